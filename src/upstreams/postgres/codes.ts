/**
 * Message type bytes of the PostgreSQL frontend/backend protocol v3
 * (https://www.postgresql.org/docs/current/protocol-message-formats.html).
 */
export const enum Frontend {
  Bind = 0x42, // B
  Close = 0x43, // C
  CopyData = 0x64, // d
  CopyDone = 0x63, // c
  CopyFail = 0x66, // f
  Describe = 0x44, // D
  Execute = 0x45, // E
  Flush = 0x48, // H
  FunctionCall = 0x46, // F
  Parse = 0x50, // P
  Password = 0x70, // p (also SASL responses, GSS)
  Query = 0x51, // Q
  Sync = 0x53, // S
  Terminate = 0x58, // X
}

export const enum Backend {
  Authentication = 0x52, // R
  BackendKeyData = 0x4b, // K
  BindComplete = 0x32, // 2
  CloseComplete = 0x33, // 3
  CommandComplete = 0x43, // C
  CopyInResponse = 0x47, // G
  CopyOutResponse = 0x48, // H
  CopyBothResponse = 0x57, // W
  CopyData = 0x64, // d
  DataRow = 0x44, // D
  EmptyQueryResponse = 0x49, // I
  ErrorResponse = 0x45, // E
  NoData = 0x6e, // n
  NoticeResponse = 0x4e, // N
  NotificationResponse = 0x41, // A
  ParameterDescription = 0x74, // t
  ParameterStatus = 0x53, // S
  ParseComplete = 0x31, // 1
  PortalSuspended = 0x73, // s
  ReadyForQuery = 0x5a, // Z
  RowDescription = 0x54, // T
}

/** Request codes of untyped startup-phase messages (protocol-message-formats, StartupMessage …). */
export const enum StartupCode {
  /** StartupMessage, protocol 3.0 (every server since 7.4). */
  Protocol3_0 = 196608,
  /** StartupMessage, protocol 3.2 (PostgreSQL 18). */
  Protocol3_2 = 196610,
  CancelRequest = 80877102,
  SslRequest = 80877103,
  GssEncRequest = 80877104,
}

/** ReadyForQuery's transaction status: where the session stands after a request. */
export const enum TxStatus {
  Idle = 0x49, // I: not in a transaction block
  InBlock = 0x54, // T: in a transaction block
  Failed = 0x45, // E: in a failed transaction block (statements are refused until it ends)
}

/** PostgreSQL's own ceiling for a message (PQ_LARGE_MESSAGE_LIMIT, 1 GB - 1). */
export const MAX_MESSAGE_BYTES = 0x3fffffff;

/** What Describe and Close name: a prepared statement ('S') or a portal ('P'). */
export const enum Target {
  Statement = 0x53, // S
  Portal = 0x50, // P
}
