import { ApiPropertyOptional } from '@nestjs/swagger';
import { CanonicalInt } from '../../common/http/canonical-int.js';
import { IsInt, IsOptional, Max, Min } from 'class-validator';

export class StreamQuery {
  @ApiPropertyOptional({ minimum: 1, maximum: 10000, default: 1000 })
  @IsOptional()
  @CanonicalInt()
  @IsInt()
  @Min(1)
  @Max(10000)
  count?: number;

  @ApiPropertyOptional({ minimum: 0, maximum: 10000, default: 10 })
  @IsOptional()
  @CanonicalInt()
  @IsInt()
  @Min(0)
  @Max(10000)
  intervalMs?: number;
}
