import { describe, expect, it } from 'vitest'
import { matchesFilter, parseShared, validateFilter, validateTopicName } from '../../src/mqtt/topic.js'

describe('validateTopicName', () => {
  it.each([
    ['a/b', null],
    ['/', null],
    ['$SYS/x', null],
    ['', /MQTT-4.7.3-1/],
    ['a/+', /MQTT-3.3.2-2/],
    ['a/#', /MQTT-3.3.2-2/],
    ['a\u0000b', /U\+0000/],
    ['a\uFFFDb', /MQTT-1.5.4-1/],
  ])('%j -> %s', (topic, want) => {
    const got = validateTopicName(topic)
    if (want === null) expect(got).toBeNull()
    else expect(got).toMatch(want)
  })
  it('refuses names longer than 65535 bytes', () => {
    expect(validateTopicName('é'.repeat(40000))).toMatch(/65535/)
  })
})

describe('validateFilter', () => {
  it.each([
    ['a/b', null],
    ['#', null],
    ['+', null],
    ['a/+/b', null],
    ['a/#', null],
    ['+/+/#', null],
    ['', /MQTT-4.7.3-1/],
    ['a/#/b', /MQTT-4.7.1-1/],
    ['a#', /MQTT-4.7.1-1/],
    ['a/b#', /MQTT-4.7.1-1/],
    ['a+', /MQTT-4.7.1-2/],
    ['a/+b/c', /MQTT-4.7.1-2/],
    ['a\u0000', /U\+0000/],
  ])('%j -> %s', (filter, want) => {
    const got = validateFilter(filter)
    if (want === null) expect(got).toBeNull()
    else expect(got).toMatch(want)
  })
})

describe('parseShared', () => {
  it('splits group and filter', () => {
    expect(parseShared('$share/g1/a/+/c')).toEqual({ group: 'g1', filter: 'a/+/c' })
  })
  it('leaves normal filters alone', () => {
    expect(parseShared('a/b')).toBeNull()
    expect(parseShared('$SYS/#')).toBeNull()
  })
  it.each(['$share/', '$share//a', '$share/g', '$share/g/', '$share/g+/a', '$share/#/a'])('refuses %j', (f) => {
    expect(parseShared(f)).toHaveProperty('error')
  })
})

describe('matchesFilter', () => {
  it.each([
    ['a/#', 'a', true],
    ['a/+', 'a/b', true],
    ['a/+', 'a/b/c', false],
    ['#', '$SYS/a', false],
    ['$SYS/#', '$SYS/a', true],
    ['a/b', 'a/b', true],
    ['a/b', 'a/b/c', false],
  ])('%s vs %s -> %s', (f, t, want) => {
    expect(matchesFilter(f, t)).toBe(want)
  })
})
