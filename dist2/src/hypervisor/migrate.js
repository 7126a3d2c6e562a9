import { imageSha256 } from './domain.js';
export function migrate(o) {
    const { domain, guest, logDirty } = o;
    const ramFrames = domain.placement.ramFrames;
    const dest = new Map();
    const send = (gfn) => {
        dest.set(gfn, domain.guest.frameForRead(gfn).slice());
    };
    let finished = guest.runUntil(guest.ops + o.warmupOps);
    const rounds = [];
    let total = 0;
    let stopReason = 'no-log-dirty';
    /** Let the guest run while `pages` pages cross the link. */
    const runWhileSending = (pages) => {
        const before = guest.ops;
        if (!finished)
            finished = guest.runUntil(guest.ops + pages * o.opsPerPage);
        return guest.ops - before;
    };
    if (logDirty !== null) {
        for (const c of o.cpus) {
            if (c.format === null)
                throw new Error('log-dirty migration needs every vCPU to run with paging on');
        }
        logDirty.enable();
        // Round 0: everything the guest has ever touched (untouched frames are zero on both sides).
        let batch = residentFrames(domain);
        for (let round = 0;; round++) {
            for (const gfn of batch)
                send(gfn);
            total += batch.length;
            rounds.push({ round, pagesSent: batch.length, guestOps: runWhileSending(batch.length) });
            batch = logDirty.clean();
            if (finished && batch.length === 0) {
                stopReason = 'guest-finished';
                break;
            }
            if (batch.length < o.stopPages) {
                stopReason = 'converged';
                break;
            }
            if (round + 1 >= o.maxRounds) {
                stopReason = 'max-rounds';
                break;
            }
            if (total + batch.length > o.maxFactor * ramFrames) {
                stopReason = 'max-factor';
                break;
            }
        }
        // Stop-and-copy: the guest is paused; what it dirtied since the last round goes now.
        for (const gfn of batch)
            send(gfn);
        total += batch.length;
        logDirty.disable();
        const pausePages = batch.length;
        return result(domain, dest, rounds, pausePages, total, stopReason, finished);
    }
    const all = residentFrames(domain);
    for (const gfn of all)
        send(gfn);
    return result(domain, dest, rounds, all.length, all.length, stopReason, finished);
}
function result(domain, dest, rounds, pausePages, totalPages, stopReason, guestFinished) {
    const sourceSha256 = domain.memorySha256();
    const destinationSha256 = imageSha256([...dest]);
    return {
        rounds,
        pausePages,
        totalPages,
        stopReason,
        guestFinished,
        sourceSha256,
        destinationSha256,
        verified: sourceSha256 === destinationSha256,
    };
}
/** Guest frames that exist in machine memory (ever written), ascending. */
function residentFrames(d) {
    const out = [];
    for (const mfn of d.mem.materializedMfns()) {
        const gfn = d.placement.gfnOf(mfn);
        if (gfn >= 0)
            out.push(gfn);
    }
    return out.sort((a, b) => a - b);
}
//# sourceMappingURL=migrate.js.map