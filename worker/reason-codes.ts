// MQTT 5.0 reason codes used by the broker (spec 2.4), and the 3.1.1 CONNACK return codes.

export const RC = {
  Success: 0x00,
  DisconnectWithWill: 0x04,
  NoSubscriptionExisted: 0x11,
  UnspecifiedError: 0x80,
  MalformedPacket: 0x81,
  ProtocolError: 0x82,
  ImplementationSpecificError: 0x83,
  UnsupportedProtocolVersion: 0x84,
  ClientIdentifierNotValid: 0x85,
  ServerBusy: 0x89,
  KeepAliveTimeout: 0x8d,
  SessionTakenOver: 0x8e,
  TopicFilterInvalid: 0x8f,
  TopicNameInvalid: 0x90,
  PacketIdentifierInUse: 0x91,
  PacketIdentifierNotFound: 0x92,
  ReceiveMaximumExceeded: 0x93,
  TopicAliasInvalid: 0x94,
  PacketTooLarge: 0x95,
  QuotaExceeded: 0x97,
  UseAnotherServer: 0x9c,
  SharedSubscriptionsNotSupported: 0x9e,
} as const

/** 3.1.1 CONNACK return codes [MQTT-3.2.2.3]. */
export const RC4 = {
  Accepted: 0x00,
  UnacceptableProtocolVersion: 0x01,
  IdentifierRejected: 0x02,
  ServerUnavailable: 0x03,
} as const
