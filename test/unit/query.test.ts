/**
 * Plug-style query decoding (protocol spec §1.1, case 13): the connect params a Phoenix
 * `connect/3` would see.
 */
import { describe, expect, it } from 'vitest';
import { decodeQuery, QueryDecodeError } from '../../src/http/query.js';

describe('decodeQuery: spec §1.1', () => {
  it('decodes the JS client params of case 13 exactly as Plug does', () => {
    expect(
      decodeQuery(
        'a%5Bb%5D=1&arr%5B%5D=p&arr%5B%5D=q&list%5B0%5D=x&list%5B1%5D=y&plain=v%20w&vsn=2.0.0',
      ),
    ).toEqual({
      a: { b: '1' },
      arr: ['p', 'q'],
      list: { '0': 'x', '1': 'y' },
      plain: 'v w',
      vsn: '2.0.0',
    });
  });

  it('unencoded brackets work the same', () => {
    expect(decodeQuery('a[b]=1&arr[]=p&arr[]=q&list[0]=x')).toEqual({
      a: { b: '1' },
      arr: ['p', 'q'],
      list: { '0': 'x' },
    });
  });

  it('accepts a leading "?" and an empty query', () => {
    expect(decodeQuery('?x=1')).toEqual({ x: '1' });
    expect(decodeQuery('')).toEqual({});
    expect(decodeQuery('?')).toEqual({});
  });

  it('deeply nested maps and lists', () => {
    expect(decodeQuery('x[y][z]=1')).toEqual({ x: { y: { z: '1' } } });
    expect(decodeQuery('x[y][z][]=1&x[y][z][]=2')).toEqual({ x: { y: { z: ['1', '2'] } } });
    expect(decodeQuery('users[name]=hello&users[age]=17&users[address][street]=foo')).toEqual({
      users: { name: 'hello', age: '17', address: { street: 'foo' } },
    });
  });

  it('the last value wins for a repeated key', () => {
    expect(decodeQuery('foo=bar&foo=baz')).toEqual({ foo: 'baz' });
    expect(decodeQuery('x[y][z]=1&x[y][z]=2')).toEqual({ x: { y: { z: '2' } } });
    expect(decodeQuery('vsn=1.0.0&vsn=2.0.0').vsn).toBe('2.0.0');
  });

  it('last always wins on conflicting shapes (Plug "bad queries")', () => {
    expect(decodeQuery('x[]=1&x[y]=1')).toEqual({ x: { y: '1' } });
    expect(decodeQuery('x=1&x[y]=1')).toEqual({ x: { y: '1' } });
    expect(decodeQuery('x[y]=1&x=1')).toEqual({ x: '1' });
  });
});

describe('decodeQuery: encoding details', () => {
  it('"+" is a space and %2B is a plus', () => {
    expect(decodeQuery('my+weird+field=q1%212%22%27w%245%267%2Fz8%29%3F')).toEqual({
      'my weird field': `q1!2"'w$5&7/z8)?`,
    });
    expect(decodeQuery('a=1+2&b=1%2B2')).toEqual({ a: '1 2', b: '1+2' });
  });

  it('decodes UTF-8 percent sequences', () => {
    expect(decodeQuery('name=caf%C3%A9&emoji=%F0%9F%98%80')).toEqual({ name: 'café', emoji: '😀' });
  });

  it('skips empty segments (the JS client writes a stray "&" for null params)', () => {
    expect(decodeQuery('&x=1&&y=2&')).toEqual({ x: '1', y: '2' });
    expect(decodeQuery('&&&')).toEqual({});
  });

  it('a key without "=" has the empty string as its value', () => {
    expect(decodeQuery('key')).toEqual({ key: '' });
    expect(decodeQuery('key=')).toEqual({ key: '' });
    expect(decodeQuery('foo[]')).toEqual({ foo: [''] });
    expect(decodeQuery('foo[]=')).toEqual({ foo: [''] });
    expect(decodeQuery('a=1&flag&b=2')).toEqual({ a: '1', flag: '', b: '2' });
  });

  it('only the first "=" splits key and value', () => {
    expect(decodeQuery('token=abc==&x=a=b')).toEqual({ token: 'abc==', x: 'a=b' });
  });

  it('a key that is not well-formed bracket syntax stays whole', () => {
    expect(decodeQuery('a[b=1')).toEqual({ 'a[b': '1' });
    expect(decodeQuery('[a]=1')).toEqual({ '[a]': '1' });
    expect(decodeQuery('a]=1')).toEqual({ 'a]': '1' });
  });

  it('an empty key is kept as "" like Plug does (decode("=value")[""] == "value")', () => {
    expect(decodeQuery('=value')).toEqual({ '': 'value' });
    expect(decodeQuery('=')).toEqual({ '': '' });
  });

  it('users[][name]=a&users[][age]=1 gives one map in the list', () => {
    expect(decodeQuery('users[][name]=a&users[][age]=1')).toEqual({
      users: [{ name: 'a', age: '1' }],
    });
    expect(decodeQuery('x[y][][z]=1')).toEqual({ x: { y: [{ z: '1' }] } });
  });

  it('nested lists x[][][]=1 → [[["1"]]] (Plug)', () => {
    expect(decodeQuery('x[][][]=1')).toEqual({ x: [[['1']]] });
  });

  it.each(['a=%', 'a=100%', 'a=%zz', 'a=%E9', 'a=%C3', '%ZZ=1', 'a=%ED%A0%80', '_utf8=%R2%9P%93'])(
    'invalid percent-encoding %j throws QueryDecodeError',
    (query) => {
      expect(() => decodeQuery(query)).toThrow(QueryDecodeError);
    },
  );
});

describe('decodeQuery: prototype safety', () => {
  function clean(): void {
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).x).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
    expect(Array.prototype).not.toHaveProperty('polluted');
  }

  it('a "__proto__" key becomes an own property, never a prototype', () => {
    const params = decodeQuery('__proto__=x&a=1');
    expect(Object.getPrototypeOf(params)).toBe(Object.prototype);
    expect(Object.prototype.hasOwnProperty.call(params, '__proto__')).toBe(true);
    expect(Object.getOwnPropertyDescriptor(params, '__proto__')?.value).toBe('x');
    expect(params.a).toBe('1');
    expect(JSON.stringify(params)).toBe('{"__proto__":"x","a":"1"}');
    clean();
  });

  it('nested "__proto__" paths do not pollute', () => {
    const params = decodeQuery(
      '__proto__[polluted]=1&a[__proto__][polluted]=2&constructor[prototype][polluted]=3&__proto__[]=4',
    );
    clean();
    const proto = Object.getOwnPropertyDescriptor(params, '__proto__')?.value as unknown;
    expect(proto).toEqual(['4']);
    const a = params.a as Record<string, unknown>;
    expect(Object.getPrototypeOf(a)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(a, '__proto__')?.value).toEqual({ polluted: '2' });
    expect(params.constructor).toEqual({ prototype: { polluted: '3' } });
    clean();
  });

  it('keys named like Object.prototype members are plain params', () => {
    const params = decodeQuery('hasOwnProperty=1&toString=2&valueOf[x]=3');
    expect(params).toEqual({ hasOwnProperty: '1', toString: '2', valueOf: { x: '3' } });
    clean();
  });

  it('a list entry key "__proto__" stays own', () => {
    const params = decodeQuery('users[][__proto__]=a');
    const users = params.users as Record<string, unknown>[];
    expect(users).toHaveLength(1);
    expect(Object.getOwnPropertyDescriptor(users[0], '__proto__')?.value).toBe('a');
    clean();
  });
});
