import type { Redis } from 'ioredis';
import type { Keys } from '../redis/index.js';
import { RelayError } from '../errors/index.js';

/** Whether an account may start channels: active, live service not enabled (→ 20318), in arrears (→ 20406). */
export type AccountState = 'active' | 'not-enabled' | 'arrears';

/** An account owns apps and a channel limit shared by all of them (SPEC "Quota"). */
export interface Account {
  accountId: string;
  name: string;
  /** Live and retained channels of all the account's apps together. */
  channelLimit: number;
  /**
   * Recording storage of all the account's apps together, in MiB; null or absent: unlimited. Starts with recording
   * are refused with 20102 once usage reaches it, and running recordings stop (README "Security": disk policy).
   */
  storageQuotaMB?: number | null;
  state: AccountState;
  createdAt: number;
}

/** The account every app without one belongs to, and the one `npm run relay` uses. */
export const DEFAULT_ACCOUNT_ID = 'default';
export const DEFAULT_CHANNEL_LIMIT = 50;
export const ACCOUNT_ID_PATTERN = /^[A-Za-z0-9_-]{1,40}$/;

/** Accounts in Redis. */
export class AccountRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** Creates an account unless it exists; returns the stored one. */
  async ensure(a: Partial<Account> & { accountId: string }): Promise<Account> {
    return (await this.create(a)) ?? (await this.get(a.accountId))!;
  }

  /** Creates an account; null when one of that id exists (one write wins, concurrent creates included). */
  async create(a: Partial<Account> & { accountId: string }): Promise<Account | null> {
    if (!ACCOUNT_ID_PATTERN.test(a.accountId)) throw new RelayError(50002, 'accountId is 1-40 letters, digits, _ or -');
    const acc: Account = {
      name: a.accountId,
      channelLimit: DEFAULT_CHANNEL_LIMIT,
      storageQuotaMB: null,
      state: 'active',
      createdAt: Date.now(),
      ...a,
    };
    return (await this.redis.hsetnx(this.keys.accounts(), a.accountId, JSON.stringify(acc))) === 1 ? acc : null;
  }

  /** One account, or null. */
  async get(accountId: string): Promise<Account | null> {
    const raw = await this.redis.hget(this.keys.accounts(), accountId);
    return raw ? (JSON.parse(raw) as Account) : null;
  }

  /** All accounts by id. */
  async list(): Promise<Account[]> {
    return (await this.redis.hvals(this.keys.accounts()))
      .map((r) => JSON.parse(r) as Account)
      .sort((x, y) => x.accountId.localeCompare(y.accountId));
  }

  /** Changes the channel limit, storage quota, state or name of an account. */
  async update(
    accountId: string,
    patch: Partial<Pick<Account, 'channelLimit' | 'state' | 'name' | 'storageQuotaMB'>>,
  ): Promise<Account> {
    const cur = await this.get(accountId);
    if (!cur) throw new RelayError(50002, `no account ${accountId}`, { status: 404 });
    const next = { ...cur, ...patch };
    await this.redis.hset(this.keys.accounts(), accountId, JSON.stringify(next));
    return next;
  }

  /** Channels (live and retained) the account holds now. */
  async usage(accountId: string): Promise<number> {
    return this.redis.scard(this.keys.accountChannels(accountId));
  }

  /** Throws the SPEC code of an account that may not start channels. */
  static assertActive(acc: Account): void {
    if (acc.state === 'not-enabled')
      throw new RelayError(20318, `live service not enabled for account ${acc.accountId}`);
    if (acc.state === 'arrears') throw new RelayError(20406, `account ${acc.accountId} is in arrears`);
  }
}
