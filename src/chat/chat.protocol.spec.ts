import { describe, expect, it } from '@jest/globals';
import { FrameError, parseClientFrame } from './chat.protocol.js';

const codeOf = (raw: string): string => {
  try {
    parseClientFrame(raw);
  } catch (error) {
    if (error instanceof FrameError) return error.code;
    throw error;
  }
  return 'ok';
};

describe('parseClientFrame', () => {
  it('parses a who frame, its limit defaulting to a full page', () => {
    expect(parseClientFrame('{"type":"who","room":"big"}')).toEqual({
      type: 'who',
      room: 'big',
      cursor: undefined,
      limit: 100,
    });
    expect(parseClientFrame('{"type":"who","room":"big","cursor":"local.100","limit":5}')).toMatchObject({
      cursor: 'local.100',
      limit: 5,
    });
  });

  it('parses the three client frames', () => {
    expect(parseClientFrame('{"type":"join","room":"general","name":" Zoë ","since":"12"}')).toEqual({
      type: 'join',
      room: 'general',
      name: 'Zoë',
      since: 12,
    });
    expect(parseClientFrame('{"type":"leave","room":"a-b_c"}')).toEqual({ type: 'leave', room: 'a-b_c' });
    expect(parseClientFrame('{"type":"message","text":"hi","clientMsgId":"c:1"}')).toEqual({
      type: 'message',
      room: undefined,
      text: 'hi',
      clientMsgId: 'c:1',
    });
  });

  it.each([
    ['', 'invalid_json'],
    ['{', 'invalid_json'],
    ['null', 'invalid_frame'],
    ['{"type":1}', 'invalid_frame'],
    ['{"type":"ping"}', 'unknown_type'],
    ['{"type":"join","room":""}', 'invalid_room'],
    ['{"type":"join","room":"a/b"}', 'invalid_room'],
    ['{"type":"join","room":"ok","name":""}', 'invalid_name'],
    ['{"type":"join","room":"ok","name":"a\\u0000b"}', 'invalid_name'],
    ['{"type":"join","room":"ok","since":1.5}', 'invalid_since'],
    ['{"type":"join","room":"ok","since":"abc"}', 'invalid_since'],
    ['{"type":"message","room":"ok","text":"   "}', 'invalid_text'],
    ['{"type":"message","room":"ok","text":"a\\u0000b"}', 'invalid_text'],
    ['{"type":"message","room":"ok","text":"a\\ud800b"}', 'invalid_text'],
    ['{"type":"message","room":"ok","text":"\\udc00"}', 'invalid_text'],
    ['{"type":"message","room":"ok","text":"\\u001b[31m"}', 'invalid_text'],
    ['{"type":"join","room":"ok","name":"a\\u0000"}', 'invalid_name'],
    ['{"type":"join","room":"ok","name":"\\ud800"}', 'invalid_name'],
    ['{"type":"join","room":"a\\u0000"}', 'invalid_room'],
    ['{"type":"join","room":"ok","since":"0x10"}', 'invalid_since'],
    ['{"type":"join","room":"ok","since":"1e3"}', 'invalid_since'],
    ['{"type":"join","room":"ok","since":"+1"}', 'invalid_since'],
    ['{"type":"join","room":"ok","since":"012"}', 'invalid_since'],
    ['{"type":"join","room":"ok","since":-1}', 'invalid_since'],
    ['{"type":"join","room":"ok","since":1e300}', 'invalid_since'],
    [JSON.stringify({ type: 'message', room: 'ok', text: 'x'.repeat(2001) }), 'text_too_long'],
    [JSON.stringify({ type: 'message', room: 'ok', text: 'x'.repeat(2000) }), 'ok'],
    ['{"type":"message","room":"ok","text":"t","clientMsgId":""}', 'invalid_client_msg_id'],
    ['{"type":"who"}', 'invalid_room'],
    ['{"type":"who","room":"ok","limit":0}', 'invalid_limit'],
    ['{"type":"who","room":"ok","limit":101}', 'invalid_limit'],
    ['{"type":"who","room":"ok","limit":"5"}', 'invalid_limit'],
    ['{"type":"who","room":"ok","cursor":""}', 'invalid_cursor'],
    ['{"type":"who","room":"ok","cursor":"a b"}', 'invalid_cursor'],
    [JSON.stringify({ type: 'who', room: 'ok', cursor: 'x'.repeat(201) }), 'invalid_cursor'],
    ['{"type":"who","room":"ok","limit":100}', 'ok'],
  ])('%s -> %s', (raw, code) => {
    expect(codeOf(raw)).toBe(code);
  });
});

describe('the text rule in chat', () => {
  it('keeps tabs, line breaks and emoji in message text', () => {
    expect(parseClientFrame('{"type":"message","room":"ok","text":"a\\tb\\r\\nc \\ud83d\\ude00"}')).toMatchObject({
      text: 'a\tb\r\nc \u{1f600}',
    });
  });

  it('names the broken rule in the error', () => {
    expect(() => parseClientFrame('{"type":"message","text":"a\\u0000"}')).toThrow(
      'text must not contain NUL characters',
    );
  });
});
