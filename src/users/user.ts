/** A user as the domain sees it (no ORM types leak past the repository). */
export interface User {
  readonly id: number;
  readonly name: string;
  readonly email: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface NewUser {
  readonly name: string;
  readonly email: string;
}

export type UserPatch = Partial<NewUser>;
