/** The Strongroom client SDK: everything a program needs to talk to a Strongroom server. */
export { CLIENT_VERSION, StrongroomClient, normalizeServerUrl, parseServerUrl } from './strongroom-client.js';
export type {
  ByteRange,
  DownloadFileOptions,
  ElevationStatus,
  FileDownload,
  FileRef,
  ScopeQuery,
  StrongroomClientOptions,
  UploadPartOptions,
} from './strongroom-client.js';
export { ApiError, isKnownErrorCode } from './api-error.js';
export { ConnectionError } from './connection-error.js';
export { FileExistsError } from './file-exists-error.js';
export type { PushOptions } from './push-version.js';
export type { PullOptions, PullResult, PulledFile } from './pull-version.js';
export { TEMP_PREFIX } from './pull-version.js';
