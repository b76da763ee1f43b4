import { applyDecorators } from '@nestjs/common';
import { ApiExtraModels, ApiProperty, ApiPropertyOptional, ApiResponse, getSchemaPath } from '@nestjs/swagger';
import { ERROR_CODES } from './error-codes.js';
import { PROBLEM_CONTENT_TYPE } from './problem-document.js';

export class FieldErrorDto {
  @ApiProperty({ example: 'email' }) field!: string;
  @ApiProperty({ example: 'email must be an email address' }) message!: string;
}

/** OpenAPI shape of the RFC 9457 problem document every error uses. */
export class ProblemDto {
  @ApiProperty({ example: '/problems/validation_failed' }) type!: string;
  @ApiProperty({ example: 'Request validation failed' }) title!: string;
  @ApiProperty({ example: 400 }) status!: number;
  @ApiPropertyOptional({ example: 'email must be an email address' }) detail?: string;
  @ApiPropertyOptional({ example: '/users' }) instance?: string;
  @ApiProperty({ enum: Object.keys(ERROR_CODES), example: 'validation_failed' }) code!: string;
  @ApiPropertyOptional({ example: '3f1c2d4e-5b6a-4c7d-8e9f-0a1b2c3d4e5f' }) requestId?: string;
  @ApiPropertyOptional({ type: [FieldErrorDto] }) errors?: FieldErrorDto[];
}

const DESCRIPTIONS: Readonly<Record<number, string>> = {
  400: 'Invalid input (fields named in `errors`)',
  401: 'Missing credentials',
  403: 'Wrong credentials',
  404: 'Not found',
  409: 'Conflict',
  413: 'Body too large',
  415: 'Unsupported media type',
  429: 'Rate limited',
  500: 'Unexpected error (nothing internal is revealed)',
  503: 'A dependency is unavailable; see Retry-After',
  504: 'Deadline exceeded',
};

/** Documents the problem documents a route can answer with. */
export function ApiProblems(...statuses: number[]): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ApiExtraModels(ProblemDto, FieldErrorDto),
    ...statuses.map((status) =>
      ApiResponse({
        status,
        description: DESCRIPTIONS[status] ?? 'Error',
        content: { [PROBLEM_CONTENT_TYPE]: { schema: { $ref: getSchemaPath(ProblemDto) } } },
      }),
    ),
  );
}
