/** CPU cost in cores of each kind of work a channel does. */
export interface ChannelCosts {
  /** A tier copied as is (ORIGINAL without watermark). */
  copy: number;
  /** The 550 tier (360p encode). */
  rate550: number;
  /** The 900 tier (540p encode). */
  rate900: number;
  /** ORIGINAL re-encoded at the upstream's size (for a watermark). */
  originalEncode: number;
  /** Decoding the upstream and drawing the watermark, once per channel. */
  watermark: number;
}
