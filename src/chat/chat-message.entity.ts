import { Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

/** One stored chat message; ids only grow, so `since` catch-up is `id > since`. */
@Entity({ name: 'chat_messages' })
@Index('chat_messages_room_id_idx', ['room', 'id'])
@Index('chat_messages_dedup_key', ['room', 'guest', 'authorKey', 'clientMsgId'], { unique: true })
export class ChatMessageEntity {
  // bigint comes back from pg as a string.
  @PrimaryGeneratedColumn('identity', { type: 'bigint', generatedIdentity: 'ALWAYS' })
  id!: string;

  @Column({ type: 'varchar', length: 64 })
  room!: string;

  /** The name shown: the token's `name`, or the guest's. */
  @Column({ type: 'varchar', length: 64 })
  author!: string;

  /** Whose message it is: the token's `sub`, or the guest name (unique per connection). */
  @Column({ name: 'author_key', type: 'varchar', length: 255 })
  authorKey!: string;

  /** Posted without a token. */
  @Column({ type: 'boolean' })
  guest!: boolean;

  @Column({ type: 'varchar', length: 2000 })
  text!: string;

  @Column({ name: 'client_msg_id', type: 'varchar', length: 64, nullable: true })
  clientMsgId!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
