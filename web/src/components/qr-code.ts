/**
 * A QR code as an SVG drawn with DOM calls (one `<path>` of unit squares): no inline style, no
 * `innerHTML`, no data URL, so it passes the strict CSP. The matrix comes from `uqr`.
 */
import { encode } from 'uqr';

const SVG = 'http://www.w3.org/2000/svg';

/** An `<svg>` of the QR code of `text`, with a quiet zone, labelled for assistive technology. */
export function qrCode(text: string, label: string): SVGSVGElement {
  const { data, size } = encode(text, { ecc: 'M', border: 4 });
  const path: string[] = [];
  data.forEach((row, y) => {
    row.forEach((dark, x) => {
      if (dark) path.push(`M${x} ${y}h1v1h-1z`);
    });
  });
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${size} ${size}`);
  svg.setAttribute('width', '200');
  svg.setAttribute('height', '200');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  svg.setAttribute('class', 'qr-code');
  svg.setAttribute('data-testid', 'totp-qr');
  const background = document.createElementNS(SVG, 'rect');
  background.setAttribute('width', String(size));
  background.setAttribute('height', String(size));
  background.setAttribute('fill', '#fff');
  const modules = document.createElementNS(SVG, 'path');
  modules.setAttribute('d', path.join(''));
  modules.setAttribute('fill', '#000');
  svg.append(background, modules);
  return svg;
}
