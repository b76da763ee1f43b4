import { Controller, HttpCode, Post } from '@nestjs/common';
import { ApiBody, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { ApiProblems } from '../common/errors/problem.dto.js';
import { ProcessDataRequestDto, ProcessDataResponseDto } from './dto/process-data.dto.js';
import { ProcessDataService } from './process-data.service.js';
import { PROCESS_DATA_PATH, RawBody } from './raw-body.route.js';
import { Anyone } from '../auth/access.decorators.js';

@ApiTags('compute')
@Controller()
export class ProcessDataController {
  constructor(private readonly service: ProcessDataService) {}

  @Post(PROCESS_DATA_PATH)
  @Anyone()
  @HttpCode(200)
  @ApiBody({ type: ProcessDataRequestDto })
  @ApiOkResponse({ type: ProcessDataResponseDto })
  @ApiProblems(400, 413, 415, 500, 503)
  async process(@RawBody() body: Buffer): Promise<ProcessDataResponseDto> {
    return this.service.process(body);
  }
}
