import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ProblemDto } from '../../common/errors/problem.dto.js';
import { UserDto } from '../../users/dto/user.dto.js';

export class PostDto {
  @ApiProperty() userId!: number;
  @ApiProperty() id!: number;
  @ApiProperty() title!: string;
  @ApiProperty() body!: string;
}

export class CommentDto {
  @ApiProperty() postId!: number;
  @ApiProperty() id!: number;
  @ApiProperty() name!: string;
  @ApiProperty() email!: string;
  @ApiProperty() body!: string;
}

export class ProfileDto {
  @ApiProperty({ type: UserDto }) user!: UserDto;
  @ApiProperty({ type: [PostDto] }) posts!: PostDto[];
  @ApiProperty({ type: [CommentDto] }) comments!: CommentDto[];
  @ApiProperty({
    enum: ['posts', 'comments'],
    isArray: true,
    description: 'Parts missing because their upstream failed',
  })
  degraded!: string[];
  @ApiPropertyOptional({ enum: [true], description: 'Served from a stale cache entry because an upstream failed' })
  stale?: true;
}

export class BatchResultDto {
  @ApiProperty() userId!: number;
  @ApiProperty({ example: 200 }) status!: number;
  @ApiPropertyOptional({ type: ProfileDto }) profile?: ProfileDto;
  @ApiPropertyOptional({ type: ProblemDto }) problem?: ProblemDto;
}

export class BatchResponseDto {
  @ApiProperty({ type: [BatchResultDto] }) results!: BatchResultDto[];
}
