import type { FunConfig } from './fun-config.js';

/** A worker's config, pushed to `<prefix>.config.push` or answered on a config pull. */
export interface PushConfigMessage {
  /** The service. */
  service: string;
  /** Gateways skip a push whose config_version they already hold (unless forced). */
  config_version: string;
  /** Every function config of the service. */
  fun_configs: FunConfig[];
  /** Gateways configured with a push token require it. */
  push_token?: string | null;
  /** The NATS micro instance id that sent it. */
  instance_id?: string;
  /** The instance's deployment version. */
  service_version?: string;
}

/** One gateway's answer to a config push. */
export type PushAck =
  | {
      gateway: string;
      status: 'accepted';
      service: string;
      config_version: string;
      accepted: { request_type: string; version: string | null }[];
      rejected: { request_type: unknown; version: unknown; errors: string[] }[];
    }
  | {
      gateway: string;
      status: 'skipped';
      service: string;
      reason: 'version_matches' | 'older_than_live';
    }
  | {
      gateway: string;
      status: 'error';
      error: 'invalid_push_config' | 'validation_failed' | 'invalid_push_token' | 'all_invalid';
      messages: string[];
    };
