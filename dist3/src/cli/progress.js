/**
 * A progress line on stderr for long runs: operations done, rate and ETA.
 * Shown only when stderr is a terminal; otherwise a no-op, so output that is
 * piped or captured stays clean. Calls to `update` are throttled here (at
 * most one redraw every 100 ms), so a runner may call it as often as every
 * 64k operations at no measurable cost. Call `stop` when the run ends (also
 * on failure): it clears the line.
 */
import cliProgress from 'cli-progress';
const NO_PROGRESS = Object.freeze({
    update() { },
    stop() { },
});
/** Milliseconds between redraws. */
const REDRAW_MS = 100;
const count = (n) => Math.round(n).toLocaleString('en-US');
export function startProgress(label, total, stream = process.stderr) {
    if (!stream.isTTY)
        return NO_PROGRESS;
    const known = Number.isFinite(total) && total > 0;
    const bar = new cliProgress.SingleBar({
        stream,
        format: known
            ? `${label} [{bar}] {percentage}% | {value}/{total} ops | {rate} ops/s | ETA {eta_formatted}`
            : `${label} {value} ops | {rate} ops/s`,
        formatValue: (v, options, type) => type === 'value' || type === 'total'
            ? count(Number(v))
            : type === 'percentage' && options.autopadding
                ? String(v).padStart(3)
                : String(v),
        autopadding: true,
        barsize: 24,
        fps: 1000 / REDRAW_MS,
        etaBuffer: 30,
        clearOnComplete: true,
        hideCursor: null,
        linewrap: false,
    }, cliProgress.Presets.shades_classic);
    const started = performance.now();
    let last = started;
    let stopped = false;
    bar.start(known ? total : 0, 0, { rate: '0' });
    return {
        update(done) {
            const now = performance.now();
            if (stopped || now - last < REDRAW_MS)
                return;
            last = now;
            bar.update(done, { rate: count((done * 1000) / (now - started)) });
        },
        stop() {
            if (stopped)
                return;
            stopped = true;
            bar.stop();
        },
    };
}
//# sourceMappingURL=progress.js.map