import { ApiProperty } from '@nestjs/swagger';

/** OpenAPI shape of the body; the worker validates it (the route never JSON-parses on the event loop). */
export class ProcessDataRequestDto {
  @ApiProperty({
    type: [Number],
    minItems: 1,
    maxItems: 1_000_000,
    example: [3, 1.5, -2, 8],
    description: '1..1,000,000 finite numbers; no other fields',
  })
  values!: number[];
}

export class HistogramBucketDto {
  @ApiProperty({ example: -2 }) from!: number;
  @ApiProperty({ example: -1.5, description: 'exclusive, except for the last bucket' }) to!: number;
  @ApiProperty({ example: 1 }) count!: number;
}

export class HistogramDto {
  @ApiProperty({
    type: [HistogramBucketDto],
    description: '20 equal-width buckets over [min, max]; one bucket [min, max] when every value is equal',
  })
  buckets!: readonly HistogramBucketDto[];
}

export class PercentilesDto {
  @ApiProperty({ example: 1.5 }) p50!: number;
  @ApiProperty({ example: 8 }) p95!: number;
  @ApiProperty({ example: 8 }) p99!: number;
}

export class ProcessDataResponseDto {
  @ApiProperty({ example: 4 }) count!: number;
  @ApiProperty({ example: 10.5 }) sum!: number;
  @ApiProperty({ example: 2.625 }) mean!: number;
  @ApiProperty({ example: 3.6, description: 'population standard deviation' }) stdDev!: number;
  @ApiProperty({ example: -2 }) min!: number;
  @ApiProperty({ example: 8 }) max!: number;
  @ApiProperty({ type: PercentilesDto, description: 'nearest rank: the value at rank ceil(p/100 * count)' })
  percentiles!: PercentilesDto;
  @ApiProperty({ type: HistogramDto }) histogram!: HistogramDto;
}
