/** The scopes this service grants on; `admin` implies every other. */
export const SCOPES = ['users:write', 'notifications:write', 'chat:write', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** A verified caller: who the token says, once its signature and claims checked out. */
export interface Caller {
  /** The token's `sub`. */
  readonly sub: string;
  /** The token's `name`, else `sub`. */
  readonly name: string;
  readonly scopes: ReadonlySet<string>;
  /** When the token stops being valid (epoch ms); undefined for the operator's static token. */
  readonly expiresAt: number | undefined;
}

/** Whether `caller` holds `scope`, directly or through `admin`. */
export const hasScope = (caller: Caller | undefined, scope: Scope): boolean =>
  caller !== undefined && (caller.scopes.has(scope) || caller.scopes.has('admin'));

export const isAdmin = (caller: Caller | undefined): boolean => hasScope(caller, 'admin');
