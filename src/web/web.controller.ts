import { Controller, Get, Header } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { readFileSync } from 'node:fs';

// Read once at startup: the page is static and ships next to the compiled code.
const PAGE = readFileSync(new URL('./index.html', import.meta.url), 'utf8');

/** The small page at `/`: join a room, chat over /ws, watch /events live. */
@ApiExcludeController()
@Controller()
export class WebController {
  @Get()
  @Header('content-type', 'text/html; charset=utf-8')
  @Header('cache-control', 'no-cache')
  page(): string {
    return PAGE;
  }
}
