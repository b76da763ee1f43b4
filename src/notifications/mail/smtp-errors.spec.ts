import { describe, expect, it } from '@jest/globals';
import { BrokenCircuitError, TimeoutError } from '../../resilience/resilience.errors.js';
import { classifySendError, describeSendError, smtpResponseCode } from './smtp-errors.js';

const smtpError = (responseCode: number, response: string, code = 'EMESSAGE') =>
  Object.assign(new Error(`Message failed: ${response}`), { code, responseCode, response, command: 'DATA' });

describe('classifySendError', () => {
  it.each([421, 450, 451, 452, 454])('treats an SMTP %d reply as transient', (code) => {
    expect(classifySendError(smtpError(code, `${String(code)} try later`))).toBe('transient');
  });

  it.each([500, 550, 552, 553, 554])('treats an SMTP %d reply as permanent', (code) => {
    expect(classifySendError(smtpError(code, `${String(code)} refused`))).toBe('permanent');
  });

  it('lets the reply code win over the nodemailer error code', () => {
    // nodemailer labels a refused DATA as EMESSAGE; a 4xx there is still worth retrying.
    expect(classifySendError(smtpError(451, '451 local error', 'EMESSAGE'))).toBe('transient');
    expect(classifySendError(smtpError(550, '550 no such user', 'EENVELOPE'))).toBe('permanent');
  });

  it.each(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'ETLS', 'ECONNREFUSED', 'ECONNRESET'])(
    'treats a connection-level %s as transient',
    (code) => {
      expect(classifySendError(Object.assign(new Error('socket trouble'), { code }))).toBe('transient');
    },
  );

  it('treats an envelope or message the transport refused itself as permanent', () => {
    expect(classifySendError(Object.assign(new Error('No recipients defined'), { code: 'EENVELOPE' }))).toBe(
      'permanent',
    );
    expect(classifySendError(Object.assign(new Error('bad message'), { code: 'EMESSAGE' }))).toBe('permanent');
  });

  it('treats timeouts, an open breaker and unknown failures as transient', () => {
    expect(classifySendError(new TimeoutError('smtp', 1000, 'attempt'))).toBe('transient');
    expect(classifySendError(new BrokenCircuitError('smtp', 5000))).toBe('transient');
    expect(classifySendError(new Error('something odd'))).toBe('transient');
    expect(classifySendError('a string')).toBe('transient');
  });
});

describe('smtpResponseCode / describeSendError', () => {
  it('reads the reply code and prefers the server reply as the description', () => {
    const error = smtpError(550, '550 5.1.1 no such user');
    expect(smtpResponseCode(error)).toBe(550);
    expect(describeSendError(error)).toBe('550 5.1.1 no such user');
    expect(smtpResponseCode(new Error('x'))).toBeUndefined();
    expect(describeSendError(Object.assign(new Error('Connection refused'), { code: 'ECONNECTION' }))).toBe(
      'ECONNECTION: Connection refused',
    );
  });
});
