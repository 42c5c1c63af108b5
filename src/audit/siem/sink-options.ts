import { StrongroomError, quote } from '../../core/errors.js';
import { SIEM_FORMATS, type SiemFormat } from './siem-payload.js';

/** An integer option within bounds or the default; configuration fails closed (DESIGN.md section 9). */
export function integerOption(
  sink: string,
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min || value > max)
    throw new StrongroomError(
      'config_invalid',
      `${sink} \`${name}\` must be an integer from ${min} to ${max}`,
    );
  return value;
}

/** The payload format, `json` when absent; an unknown one fails closed (DESIGN.md section 9). */
export function formatOption(sink: string, value: string | undefined): SiemFormat {
  if (value === undefined) return 'json';
  if (!(SIEM_FORMATS as readonly string[]).includes(value))
    throw new StrongroomError('config_invalid', `${sink} format ${quote(value)} is not json or ocsf`);
  return value as SiemFormat;
}
