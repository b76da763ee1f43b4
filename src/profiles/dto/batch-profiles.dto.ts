import { ApiProperty } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsInt, Max, Min } from 'class-validator';

export class BatchProfilesDto {
  @ApiProperty({ type: [Number], minItems: 1, maxItems: 100, example: [1, 2, 3], description: 'User ids (never URLs)' })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(100)
  @IsInt({ each: true, message: 'each userId must be an integer' })
  @Min(1, { each: true })
  @Max(2_147_483_647, { each: true })
  userIds!: number[];
}
