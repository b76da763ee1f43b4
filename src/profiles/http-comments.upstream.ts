import type { HttpUpstreamClient } from './http-upstream.client.js';
import type { Comment } from './profile.js';
import { CommentsUpstream, type UpstreamCall } from './upstream.port.js';

/** Comments over HTTP (JSONPlaceholder shape). */
export class HttpCommentsUpstream extends CommentsUpstream {
  constructor(private readonly client: HttpUpstreamClient) {
    super();
  }

  commentsOf(userId: number, call: UpstreamCall): Promise<Comment[]> {
    return this.client.getArray<Comment>(`users/${String(userId)}/comments`, call);
  }
}
