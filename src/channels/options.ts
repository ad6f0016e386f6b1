import { RelayError } from '../errors/index.js';
import {
  OPTION_DEFAULTS,
  type Encode,
  type RateType,
  type RecordFileType,
  type ResolvedPushOption,
  type SdkType,
} from './types.js';

/** option of a start request as the API schema admits it (numbers checked against the vocabulary by the schema). */
export interface PushOptionInput {
  encode: number;
  rateType?: number;
  rateTypes?: number[];
  record?: boolean;
  recordFileType?: number;
  waterMark?: boolean;
  waterMarkId?: number;
  sdkType?: number;
  channelName?: string;
  channelDesc?: string;
  channelPassword?: string;
  autoResume?: boolean;
}

/** Fills every default of a start's option; the password stays out of it (only a hash is kept, by the service). */
export function resolveOption(o: PushOptionInput): ResolvedPushOption {
  const rateTypes = (o.rateTypes ?? [o.rateType ?? OPTION_DEFAULTS.rateType]) as RateType[];
  if (o.rateType !== undefined && o.rateTypes && !o.rateTypes.includes(o.rateType))
    throw new RelayError(50002, `rateType ${o.rateType} is not among rateTypes [${o.rateTypes.join(', ')}]`);
  if (o.waterMark && o.waterMarkId === undefined)
    throw new RelayError(50002, 'waterMark is true but waterMarkId is missing', {
      hint: 'upload a watermark (POST /v1/watermarks) and pass its waterMarkId',
    });
  return {
    encode: o.encode as Encode,
    rateType: rateTypes[0]!,
    rateTypes,
    record: o.record ?? OPTION_DEFAULTS.record,
    recordFileType: (o.recordFileType ?? OPTION_DEFAULTS.recordFileType) as RecordFileType,
    waterMark: o.waterMark ?? OPTION_DEFAULTS.waterMark,
    ...(o.waterMark ? { waterMarkId: o.waterMarkId! } : {}),
    sdkType: (o.sdkType ?? OPTION_DEFAULTS.sdkType) as SdkType,
    ...(o.channelName !== undefined ? { channelName: o.channelName } : {}),
    ...(o.channelDesc !== undefined ? { channelDesc: o.channelDesc } : {}),
    passwordProtected: o.channelPassword !== undefined,
    autoResume: o.autoResume ?? OPTION_DEFAULTS.autoResume,
  };
}
