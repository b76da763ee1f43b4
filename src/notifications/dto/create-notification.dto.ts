import { ApiProperty } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsEmail, IsIn, IsString, Length, MaxLength } from 'class-validator';
import { SingleLine } from '../../common/text/single-line.decorator.js';

const trim = ({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value);

export class CreateNotificationDto {
  @ApiProperty({ enum: ['email'], example: 'email' })
  @IsIn(['email'], { message: 'channel must be "email"' })
  channel!: 'email';

  @ApiProperty({ example: 'ada@example.org', format: 'email', maxLength: 254 })
  @Transform(trim)
  @IsString()
  @MaxLength(254)
  @IsEmail({}, { message: 'to must be an email address' })
  to!: string;

  @ApiProperty({ example: 'Welcome', minLength: 1, maxLength: 200 })
  @IsString()
  @Length(1, 200)
  @SingleLine()
  subject!: string;

  @ApiProperty({ example: 'Hello Ada, welcome aboard.', minLength: 1, maxLength: 100_000 })
  @IsString()
  @Length(1, 100_000)
  body!: string;
}
