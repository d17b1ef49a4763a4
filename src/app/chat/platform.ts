// The port a chat platform implements (after Teleport's MessagingBot): its name, its health, where
// a person's direct messages go, post a message, update one, and the audit channel's lines. What
// to post, update and where is decided once, for every platform, by ChatNotifier (notifier.ts);
// a platform renders the messages below in its own markup and sends them.
import type { CardScope, Notice } from '../../core/messages.js';
import type { Connection } from '../../core/reply.js';
import type { AccessRequest, AuditEvent, PrincipalId } from '../../core/types.js';

/** An approval or extension card as data. */
export interface ApprovalCard {
  request: AccessRequest;
  scope: CardScope;
  quorum: number;
  /** Once the request escalated: who was asked too. */
  escalatedTo: PrincipalId[];
  /** For an extension card whose extension was decided: how. */
  outcome?: 'approved' | 'denied';
  /** Who may decide now (empty once decided); a platform may give them a view with buttons. */
  deciders: PrincipalId[];
  /** The copy in one person's direct messages: theirs, and whether they may decide now. */
  viewer?: { principal: PrincipalId; canDecide: boolean };
}

/** What a platform is asked to show. */
export type ChatMessage =
  | { kind: 'approval'; card: ApprovalCard }
  /** Plain text standing in for an approval card the platform refused (or whose destination failed). */
  | { kind: 'card_fallback'; card: ApprovalCard; error: string }
  /** To the requester: their request ended, or their grant changed. */
  | { kind: 'notice'; request: AccessRequest; notice: Notice }
  /** To the requester: the port is open, how to connect, and a way to close it. */
  | { kind: 'active'; request: AccessRequest; connections: Connection[] }
  /** To the requester: the grant ends soon, with the extensions on offer. */
  | { kind: 'expiring'; request: AccessRequest; extendOptionsMs: number[] };

/** A channel by the platform's id for it, or one person's direct messages (`id` from `recipient`). */
export type Destination = { kind: 'channel'; id: string } | { kind: 'dm'; id: string; principal: PrincipalId };

export interface ChatPlatform {
  /** The key of its entries in the policy file, the label of its metrics, the origin of the requests made there. */
  readonly name: string;
  /** The audit channel where the policy names none, and the least time between two audit messages to one channel. */
  readonly auditFeed: { channel?: string; intervalMs: number };
  /** `ok`, or what is wrong (shown by /readyz, which is not ready until every platform is `ok`). */
  health(): string;
  /** Where `principal`'s direct messages go (a user or chat id), or null while the platform does not know them. */
  recipient(principal: PrincipalId): Promise<string | null>;
  /** Posts a message; returns what `update` needs to replace it ('' if the platform gave nothing). Throws when not posted. */
  post(to: Destination, message: ChatMessage): Promise<string>;
  /** Replaces a message `post` returned `ref` for. */
  update(ref: string, message: ChatMessage): Promise<void>;
  /** One audit event as a line of the audit channel (in the platform's markup). */
  auditLine(event: AuditEvent): string;
  /** Posts lines of the audit channel as one message. */
  postText(channel: string, text: string): Promise<void>;
  /** A failed post: the platform's error code, and whether posting the same again cannot help (the message or the destination was refused). */
  failure(err: unknown): { code: string; permanent: boolean };
  /** Home views (Slack App Home, Teams home card …), if the platform has them. */
  homes?: HomeViewsPort;
}

/**
 * A platform's home views. The notifier asks `viewers` first, and only when a change concerns one
 * of them works out who else it concerns; so on a platform where nobody keeps a home, a change costs
 * nothing more.
 */
export interface HomeViewsPort {
  /** Who keeps a home view current there (a cheap read: it may be a few seconds stale). */
  viewers(): Promise<ReadonlySet<PrincipalId>>;
  /**
   * Shows `principal` their home view again. The notifier calls it for every viewer a change
   * concerns (the requester, whoever may decide), one call at a time per principal and platform; a
   * failure is logged.
   */
  refresh(principal: PrincipalId): Promise<void>;
}

/** A posted card as kept for its updates: the platform's reference, and whose DM copy it is. */
export interface PostedMessage {
  ref: string;
  viewer?: PrincipalId;
}

/** Where each platform posted each request's cards: one set per platform, card and request (adding is atomic and commutative). */
export interface MessageRefs {
  add(platform: string, scope: CardScope, requestId: string, messages: PostedMessage[]): Promise<void>;
  list(platform: string, scope: CardScope, requestId: string): Promise<PostedMessage[]>;
}
