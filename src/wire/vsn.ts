import type { Serializer } from './serializer.js';
import { v1Serializer } from './v1-json.js';
import { v2Serializer } from './v2-json.js';

const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;

/** The vsn a client gets when it sends none, as in Phoenix. */
export const DEFAULT_VSN = '1.0.0';

/**
 * Picks the serializer for a client's `vsn` query param the way Phoenix does: `~> 1.0.0` → V1,
 * `~> 2.0.0` → V2. A pre-release (2.0.0-rc.1), another minor (2.1.0) or an invalid version gives
 * null, which the transports answer with 403.
 */
export function serializerForVsn(vsn: string | undefined): Serializer | null {
  const match = SEMVER.exec(vsn ?? DEFAULT_VSN);
  if (!match || match[4] !== undefined) return null;
  const major = match[1];
  const minor = match[2];
  if (minor !== '0') return null;
  if (major === '1') return v1Serializer;
  if (major === '2') return v2Serializer;
  return null;
}
