import type { Comment, Post } from './profile.js';

/** Per-call context: the abort signal and the absolute deadline (epoch ms) to pass downstream. */
export interface UpstreamCall {
  readonly signal: AbortSignal;
  /** Epoch ms; `signal` aborts by then at the latest (the round's deadline timer). */
  readonly deadlineAt: number;
  readonly requestId: string | undefined;
}

/** Port of the posts service (the abstract class is the DI token). */
export abstract class PostsUpstream {
  abstract postsOf(userId: number, call: UpstreamCall): Promise<Post[]>;
}

/** Port of the comments service. */
export abstract class CommentsUpstream {
  abstract commentsOf(userId: number, call: UpstreamCall): Promise<Comment[]>;
}
