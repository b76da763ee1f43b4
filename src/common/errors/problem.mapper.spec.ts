import { BadRequestException, HttpException, InternalServerErrorException, NotFoundException } from '@nestjs/common';
import { describe, expect, it } from '@jest/globals';
import { AppException } from './app.exception.js';
import { mapToProblem } from './problem.mapper.js';

const ctx = { instance: '/users/1', requestId: 'req-1' };

describe('mapToProblem', () => {
  it('maps a domain error with its code, fields and headers', () => {
    const mapped = mapToProblem(
      new AppException('email_taken', 'taken', {
        errors: [{ field: 'email', message: 'in use' }],
        headers: { 'x-a': '1' },
      }),
      ctx,
    );
    expect(mapped.problem).toEqual({
      type: '/problems/email_taken',
      title: 'Email address already in use',
      status: 409,
      detail: 'taken',
      instance: '/users/1',
      code: 'email_taken',
      requestId: 'req-1',
      errors: [{ field: 'email', message: 'in use' }],
    });
    expect(mapped.headers).toEqual({ 'x-a': '1' });
    expect(mapped.unexpected).toBe(false);
  });

  it('maps Nest HTTP exceptions by status', () => {
    expect(mapToProblem(new NotFoundException('Cannot GET /x'), ctx).problem).toMatchObject({
      status: 404,
      code: 'not_found',
    });
    expect(mapToProblem(new BadRequestException('nope'), ctx).problem).toMatchObject({
      status: 400,
      code: 'bad_request',
      detail: 'nope',
    });
  });

  it('keeps Fastify client error codes wrapped by Nest', () => {
    const tooLarge = Object.assign(new Error('Request body is too large'), {
      code: 'FST_ERR_CTP_BODY_TOO_LARGE',
      statusCode: 413,
    });
    const wrapped = new HttpException(tooLarge.message, 413, { cause: tooLarge });
    expect(mapToProblem(wrapped, ctx).problem).toMatchObject({ status: 413, code: 'payload_too_large' });
    const badJson = Object.assign(new SyntaxError('Unexpected end of JSON input'), { statusCode: 400 });
    expect(mapToProblem(new HttpException(badJson.message, 400, { cause: badJson }), ctx).problem.code).toBe(
      'invalid_json',
    );
  });

  it('turns database outages into 503 with Retry-After', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:5432'), { code: 'ECONNREFUSED' });
    const mapped = mapToProblem(refused, ctx);
    expect(mapped.problem).toMatchObject({ status: 503, code: 'database_unavailable' });
    expect(JSON.stringify(mapped.problem)).not.toContain('10.1.2.3');
    expect(mapped.headers['retry-after']).toBe('1');
  });

  it('never leaks internals of unknown errors', () => {
    const secret = new Error('password=hunter2 at postgres://admin:hunter2@db/app SELECT * FROM users');
    const mapped = mapToProblem(secret, ctx);
    expect(mapped.problem).toEqual({
      type: '/problems/internal_error',
      title: 'Internal server error',
      status: 500,
      instance: '/users/1',
      code: 'internal_error',
      requestId: 'req-1',
    });
    expect(mapped.unexpected).toBe(true);
    expect(mapToProblem('a string', ctx).problem.status).toBe(500);
    const nest500 = mapToProblem(new InternalServerErrorException('db password leaked'), ctx);
    expect(JSON.stringify(nest500.problem)).not.toContain('leaked');
    expect(nest500.unexpected).toBe(true);
  });
});
