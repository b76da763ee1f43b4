import { Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { PolicyRegistry } from '../resilience/nest/policy.registry.js';
import { UsersModule } from '../users/users.module.js';
import { HttpCommentsUpstream } from './http-comments.upstream.js';
import { HttpPostsUpstream } from './http-posts.upstream.js';
import { HttpUpstreamClient } from './http-upstream.client.js';
import { RedisConnection } from '../redis/redis.connection.js';
import { KeyvProfileCache } from './keyv-profile.cache.js';
import { MemoryProfileCache } from './memory-profile.cache.js';
import { ProfileCache } from './profile.cache.js';
import { ProfileMetrics } from './profile.metrics.js';
import { ProfilesBatchService } from './profiles-batch.service.js';
import { ProfilesController } from './profiles.controller.js';
import { ProfilesService } from './profiles.service.js';
import { CommentsUpstream, PostsUpstream } from './upstream.port.js';
import { UpstreamUrls } from './upstream-urls.js';

const client = (name: 'posts' | 'comments') => ({
  inject: [PolicyRegistry, UpstreamUrls, AppConfig],
  useFactory: (registry: PolicyRegistry, urls: UpstreamUrls, config: AppConfig) =>
    new HttpUpstreamClient(registry.get(name), urls[name], config.upstreams.maxSockets),
});

@Module({
  imports: [UsersModule],
  controllers: [ProfilesController],
  providers: [
    ProfilesService,
    ProfilesBatchService,
    ProfileMetrics,
    { provide: UpstreamUrls, inject: [AppConfig], useFactory: (config: AppConfig) => UpstreamUrls.resolve(config) },
    { provide: 'POSTS_CLIENT', ...client('posts') },
    { provide: 'COMMENTS_CLIENT', ...client('comments') },
    {
      provide: PostsUpstream,
      inject: ['POSTS_CLIENT'],
      useFactory: (c: HttpUpstreamClient) => new HttpPostsUpstream(c),
    },
    {
      provide: CommentsUpstream,
      inject: ['COMMENTS_CLIENT'],
      useFactory: (c: HttpUpstreamClient) => new HttpCommentsUpstream(c),
    },
    {
      provide: ProfileCache,
      inject: [AppConfig, ProfileMetrics, RedisConnection],
      useFactory: (config: AppConfig, metrics: ProfileMetrics, redis: RedisConnection) =>
        config.redisUrl === undefined
          ? new MemoryProfileCache()
          : new KeyvProfileCache(
              config.redisUrl,
              config.redisKeyPrefix,
              { error: (op) => metrics.cacheError(op) },
              redis,
            ),
    },
  ],
})
export class ProfilesModule implements OnApplicationShutdown {
  constructor(
    @Inject('POSTS_CLIENT') private readonly postsClient: HttpUpstreamClient,
    @Inject('COMMENTS_CLIENT') private readonly commentsClient: HttpUpstreamClient,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([this.postsClient.close(), this.commentsClient.close()]);
  }
}
