import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { ApiProblems } from '../common/errors/problem.dto.js';
import { ParseIdPipe } from '../common/http/parse-id.pipe.js';
import { CreateUserDto } from './dto/create-user.dto.js';
import { ListUsersQuery } from './dto/list-users.query.js';
import { UpdateUserDto } from './dto/update-user.dto.js';
import { UserDto, UserPageDto } from './dto/user.dto.js';
import { UsersService } from './users.service.js';
import { PublicRead, Scopes, SelfOrAdmin } from '../auth/access.decorators.js';

@ApiTags('users')
@ApiProblems(500, 503)
@Controller('users')
export class UsersController {
  constructor(private readonly users: UsersService) {}

  @Post()
  @Scopes('users:write')
  @ApiCreatedResponse({ type: UserDto })
  @ApiProblems(400, 409, 413, 415)
  async create(@Body() body: CreateUserDto): Promise<UserDto> {
    return UserDto.from(await this.users.create(body));
  }

  @Get()
  @PublicRead()
  @ApiOkResponse({ type: UserPageDto })
  @ApiProblems(400)
  async list(@Query() query: ListUsersQuery): Promise<UserPageDto> {
    const page = await this.users.list(query.limit, query.cursor);
    return { items: page.items.map((u) => UserDto.from(u)), nextCursor: page.nextCursor };
  }

  @Get(':id')
  @PublicRead()
  @ApiOkResponse({ type: UserDto })
  @ApiProblems(400, 404)
  async get(@Param('id', ParseIdPipe) id: number): Promise<UserDto> {
    return UserDto.from(await this.users.get(id));
  }

  @Patch(':id')
  @SelfOrAdmin()
  @ApiOkResponse({ type: UserDto })
  @ApiProblems(400, 404, 409, 413, 415)
  async update(@Param('id', ParseIdPipe) id: number, @Body() body: UpdateUserDto): Promise<UserDto> {
    return UserDto.from(await this.users.update(id, body));
  }

  @Delete(':id')
  @SelfOrAdmin()
  @HttpCode(204)
  @ApiNoContentResponse()
  @ApiProblems(400, 404)
  async remove(@Param('id', ParseIdPipe) id: number): Promise<void> {
    await this.users.remove(id);
  }
}
