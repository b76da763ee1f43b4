/** Who a member of a room is, as presence frames show them. */
export interface PresenceMember {
  readonly name: string;
  readonly guest: boolean;
}

/** A member of another instance's share, removed because that instance's lease ran out. */
export interface SweptMember extends PresenceMember {
  readonly instance: string;
  readonly connectionId: string;
}

/** A member of this instance's old share that the rewritten share no longer holds. */
export interface DroppedMember extends PresenceMember {
  readonly connectionId: string;
}

export interface JoinResult {
  /** Members of the room across the live instances, this join included. */
  readonly count: number;
  /** Whether this instance had a share in the room before (false: first member, or swept). */
  readonly present: boolean;
}

export interface RenewResult {
  /** This instance's share is gone (swept or expired): it must be rewritten. Nothing was renewed. */
  readonly lost: boolean;
  /** Dead instances' members this call removed; only this caller got them. */
  readonly swept: readonly SweptMember[];
  /** The room's count after the sweep (only meaningful when `swept` is not empty). */
  readonly count: number;
}

export interface ReconcileResult {
  readonly count: number;
  /** Connections written that the old share did not hold (all of them when it was swept or missing). */
  readonly added: readonly string[];
  /** Members the old share held that are no longer local. */
  readonly dropped: readonly DroppedMember[];
  readonly swept: readonly SweptMember[];
}

/** One page of a room's members across the live instances. */
export interface MembersPage {
  readonly members: readonly PresenceMember[];
  /** Where the next page starts; undefined after the last. */
  readonly cursor: string | undefined;
  readonly count: number;
}

/**
 * Where the rooms' presence is shared between instances. Each instance has a
 * share per room (its members there) under a lease it renews; a count is the
 * members of the instances whose lease is running. Every call is atomic, so a
 * dead instance's share is removed, and its members returned, to exactly one
 * caller.
 */
export abstract class ChatPresenceStore {
  /** Adds a member to this instance's share and renews its lease. */
  abstract join(room: string, connectionId: string, member: PresenceMember): Promise<JoinResult>;
  /** Removes a member from this instance's share (the share itself once empty). Returns the count. */
  abstract leave(room: string, connectionId: string): Promise<number>;
  /** The heartbeat of one room: renews this instance's lease and sweeps the dead instances' shares. */
  abstract renew(room: string): Promise<RenewResult>;
  /** Rewrites this instance's share as `members` (none: removes it), then sweeps like `renew`. */
  abstract reconcile(room: string, members: ReadonlyMap<string, PresenceMember>): Promise<ReconcileResult>;
  /**
   * Up to `limit` members of the live instances' shares, from `cursor` (a
   * previous page's, or undefined for the first). A member present for the
   * whole walk is listed at least once (the store's scan guarantees).
   */
  abstract members(room: string, cursor: string | undefined, limit: number): Promise<MembersPage>;
}
