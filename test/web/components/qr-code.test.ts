// @vitest-environment happy-dom
import { encode } from 'uqr';
import { describe, expect, it } from 'vitest';
import { qrCode } from '../../../web/src/components/qr-code.js';

describe('qrCode', () => {
  it('draws every dark module of the QR matrix as one unit square in one path, with no style attribute', () => {
    const uri = 'otpauth://totp/example.org:a%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=example.org';
    const svg = qrCode(uri, 'QR code');
    const { data, size } = encode(uri, { ecc: 'M', border: 4 });
    expect(svg.getAttribute('viewBox')).toBe(`0 0 ${size} ${size}`);
    expect(svg.getAttribute('aria-label')).toBe('QR code');
    const d = svg.querySelector('path')?.getAttribute('d') ?? '';
    const squares = [...d.matchAll(/M(\d+) (\d+)h1v1h-1z/g)].map((m) => `${m[1]},${m[2]}`);
    const dark = data.flatMap((row, y) => row.flatMap((on, x) => (on ? [`${x},${y}`] : [])));
    expect(squares).toEqual(dark);
    expect(dark.length).toBeGreaterThan(100);
    expect(svg.outerHTML).not.toMatch(/style=/);
  });
});
