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
    [JSON.stringify({ type: 'message', room: 'ok', text: 'x'.repeat(2001) }), 'text_too_long'],
    [JSON.stringify({ type: 'message', room: 'ok', text: 'x'.repeat(2000) }), 'ok'],
    ['{"type":"message","room":"ok","text":"t","clientMsgId":""}', 'invalid_client_msg_id'],
  ])('%s -> %s', (raw, code) => {
    expect(codeOf(raw)).toBe(code);
  });
});
