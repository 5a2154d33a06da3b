// Topic names and topic filters: validation with the spec rule each check enforces, shared
// subscription parsing, and a single-filter matcher (for retained messages on SUBSCRIBE).

import { Buffer } from 'node:buffer'

/** Why a topic or filter was refused; `null` means valid. */
export type TopicError = string | null

const MAX_UTF8_BYTES = 65535

/**
 * mqtt-packet decodes strings with `toString('utf8')`, which turns ill-formed UTF-8 into
 * U+FFFD. We cannot see the raw bytes any more, so U+FFFD is treated as the trace of invalid
 * UTF-8 [MQTT-1.5.4-1]. A client that sends a real U+FFFD in a topic is refused too.
 */
function badString(s: string): TopicError {
  if (s.includes('\u0000')) return 'U+0000 in string [MQTT-1.5.4-2]'
  if (s.includes('\uFFFD')) return 'ill-formed UTF-8 [MQTT-1.5.4-1]'
  if (s.length > MAX_UTF8_BYTES / 3 && Buffer.byteLength(s) > MAX_UTF8_BYTES) return 'string longer than 65535 bytes'
  return null
}

/** A topic name in PUBLISH (or a will topic). */
export function validateTopicName(topic: string): TopicError {
  if (topic.length === 0) return 'empty topic name [MQTT-4.7.3-1]'
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i)
    // '+' 43, '#' 35
    if (c === 43 || c === 35) return 'wildcard in topic name [MQTT-3.3.2-2]'
    if (c === 0) return 'U+0000 in topic [MQTT-4.7.3-2]'
  }
  return badString(topic)
}

/** A topic filter (without any `$share/group/` prefix). */
export function validateFilter(filter: string): TopicError {
  if (filter.length === 0) return 'empty topic filter [MQTT-4.7.3-1]'
  const bad = badString(filter)
  if (bad) return bad
  const levels = filter.split('/')
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!
    if (level.includes('#')) {
      // '#' must be the last character and occupy a whole level [MQTT-4.7.1-1]
      if (level !== '#' || i !== levels.length - 1) return "'#' not alone as the last level [MQTT-4.7.1-1]"
    } else if (level.includes('+') && level !== '+') {
      return "'+' not alone in its level [MQTT-4.7.1-2]"
    }
  }
  return null
}

export interface SharedFilter {
  group: string
  filter: string
}

/**
 * Splits `$share/{group}/{filter}`. Returns null for a normal filter, or an error string when
 * the share name is malformed [MQTT-4.8.2-1, MQTT-4.8.2-2].
 */
export function parseShared(full: string): SharedFilter | null | { error: string } {
  if (!full.startsWith('$share/')) return null
  const rest = full.slice(7)
  const slash = rest.indexOf('/')
  if (slash <= 0) return { error: 'shared subscription without group or filter [MQTT-4.8.2-1]' }
  const group = rest.slice(0, slash)
  if (group.includes('+') || group.includes('#')) return { error: 'wildcard in share name [MQTT-4.8.2-2]' }
  const filter = rest.slice(slash + 1)
  if (filter.length === 0) return { error: 'shared subscription without filter [MQTT-4.8.2-1]' }
  return { group, filter }
}

export function hasWildcard(filter: string): boolean {
  return filter.includes('+') || filter.includes('#')
}

/** Does `filter` match `topic`? `$`-topics are not matched by a leading wildcard [MQTT-4.7.2-1]. */
export function matchesFilter(filter: string, topic: string): boolean {
  if (topic.charCodeAt(0) === 36 /* $ */ && (filter.charCodeAt(0) === 43 || filter.charCodeAt(0) === 35)) return false
  const f = filter.split('/')
  const t = topic.split('/')
  for (let i = 0; i < f.length; i++) {
    const level = f[i]
    if (level === '#') return true
    if (i >= t.length) return false
    if (level !== '+' && level !== t[i]) return false
  }
  return f.length === t.length
}
