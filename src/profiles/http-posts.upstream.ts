import type { Post } from './profile.js';
import type { HttpUpstreamClient } from './http-upstream.client.js';
import { PostsUpstream, type UpstreamCall } from './upstream.port.js';

/** Posts over HTTP (JSONPlaceholder shape). */
export class HttpPostsUpstream extends PostsUpstream {
  constructor(private readonly client: HttpUpstreamClient) {
    super();
  }

  postsOf(userId: number, call: UpstreamCall): Promise<Post[]> {
    return this.client.getArray<Post>(`users/${String(userId)}/posts`, call);
  }
}
