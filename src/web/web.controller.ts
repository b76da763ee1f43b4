import { Controller, Get, Header } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { readFileSync } from 'node:fs';
import { Public } from '../auth/access.decorators.js';

// Read once at startup: the page is static and ships next to the compiled code.
const PAGE = readFileSync(new URL('./index.html', import.meta.url), 'utf8');

/** The small page at `/`: join a room, chat over /ws, watch /events live. */
@ApiExcludeController()
@Controller()
export class WebController {
  @Get()
  @Public()
  @Header('content-type', 'text/html; charset=utf-8')
  @Header('cache-control', 'no-cache')
  page(): string {
    return PAGE;
  }
}
