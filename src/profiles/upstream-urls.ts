import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { startSimulator } from '../upstream/simulator.js';

/**
 * Base URLs of the posts and comments services. When either is not
 * configured, the bundled upstream simulator starts on a free loopback port,
 * so profiles work on a fresh machine with nothing else running.
 */
@Injectable()
export class UpstreamUrls implements OnApplicationShutdown {
  private static readonly logger = new Logger('Upstreams');

  private constructor(
    readonly posts: string,
    readonly comments: string,
    private readonly stopSimulator: (() => Promise<void>) | undefined,
  ) {}

  static async resolve(config: AppConfig): Promise<UpstreamUrls> {
    const { postsUrl, commentsUrl } = config.upstreams;
    if (postsUrl !== undefined && commentsUrl !== undefined) return new UpstreamUrls(postsUrl, commentsUrl, undefined);
    const simulator = await startSimulator({ host: '127.0.0.1', port: 0 });
    UpstreamUrls.logger.log(
      { url: simulator.url },
      'upstream simulator started (POSTS_SERVICE_URL / COMMENTS_SERVICE_URL unset)',
    );
    return new UpstreamUrls(postsUrl ?? simulator.url, commentsUrl ?? simulator.url, () => simulator.close());
  }

  async onApplicationShutdown(): Promise<void> {
    await this.stopSimulator?.();
  }
}
