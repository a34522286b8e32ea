import Foundation
import TradewireJSON

/// A one-line progress display on stderr for long work (`journal export`, `journal import`).
///
/// Quiet while the work is short: the line appears only once it has taken over
/// ``delay``, then is redrawn in place (`\r`) at most every ``interval``, with done/total,
/// percent, rate and time left:
///
///     exporting [#######.............]  35%  70000/200000 events  52000/s  ETA 3s
///
/// ``finish()`` draws the final state and ends the line (nothing when nothing was drawn), so
/// what is printed next starts on a line of its own. Cheap to call for every record: it
/// reads the clock and returns unless a redraw is due. The clock and the output are injected
/// for tests.
struct ProgressBar {
    /// What is counted.
    enum Unit {
        /// Whole things, named (`events`).
        case count(String)
        /// Bytes, shown in MiB.
        case bytes
    }

    static let delay = Duration.seconds(1)
    static let interval = Duration.milliseconds(100)

    let label: String
    let unit: Unit
    /// Nil when unknown (input from a pipe): no percent and no ETA then.
    var total: Int?
    let enabled: Bool
    private let now: () -> ContinuousClock.Instant
    private let write: (String) -> Void
    private let start: ContinuousClock.Instant
    private var lastDraw: ContinuousClock.Instant?
    private var drawnWidth = 0
    private var done = 0
    private var note: String?

    init(
        _ label: String, unit: Unit, total: Int?, enabled: Bool,
        now: @escaping () -> ContinuousClock.Instant = { ContinuousClock.now },
        write: @escaping (String) -> Void = { try? FileHandle.standardError.write(contentsOf: Data($0.utf8)) }
    ) {
        self.label = label
        self.unit = unit
        self.total = total
        self.enabled = enabled
        self.now = now
        self.write = write
        self.start = now()
    }

    /// Whether anything was drawn (and ``finish()`` will end the line).
    var isVisible: Bool { lastDraw != nil }

    /// Records progress; redraws when the line is due. `note` follows the numbers (e.g. the
    /// events imported when the bar counts bytes); it is evaluated only for a redraw.
    mutating func update(_ done: Int, note: @autoclosure () -> String? = nil) {
        self.done = done
        guard enabled else { return }
        let time = now()
        if let lastDraw {
            guard time - lastDraw >= Self.interval else { return }
        } else {
            guard time - start >= Self.delay else { return }
        }
        self.note = note()
        draw(at: time)
    }

    /// Draws the final state (with `note` when given) and ends the line, when the line was
    /// shown.
    mutating func finish(note: String? = nil) {
        guard enabled, isVisible else { return }
        if let note { self.note = note }
        draw(at: now())
        write("\n")
        lastDraw = nil
        drawnWidth = 0
    }

    private mutating func draw(at time: ContinuousClock.Instant) {
        let elapsed = time - start
        let text = Self.line(label: label, unit: unit, done: done, total: total, elapsed: elapsed, note: note)
        let width = text.count
        // Spaces wipe what a longer previous line left; `\r` alone does not.
        write("\r" + text + String(repeating: " ", count: max(0, drawnWidth - width)))
        drawnWidth = width
        lastDraw = time
    }

    /// The line for `done` of `total` after `elapsed`.
    static func line(
        label: String, unit: Unit, done: Int, total: Int?, elapsed: Duration, note: String? = nil
    ) -> String {
        let seconds = elapsed.inSeconds
        let rate = seconds > 0 ? Double(done) / seconds : 0
        var parts = [label]
        if let total, total > 0 {
            let fraction = min(1, max(0, Double(done) / Double(total)))
            let filled = Int(fraction * 20)
            parts.append("[" + String(repeating: "#", count: filled) + String(repeating: ".", count: 20 - filled) + "]")
            parts.append(String(format: "%3d%%", Int(fraction * 100)))
            parts.append(amount(done, of: total, unit))
        } else {
            parts.append(amount(done, of: nil, unit))
        }
        parts.append(self.rate(rate, unit))
        if let total, total > 0 {
            if done >= total {
                parts.append("in " + clock(seconds))
            } else if rate > 0 {
                parts.append("ETA " + clock(Double(total - done) / rate))
            } else {
                parts.append("ETA --")
            }
        }
        if let note { parts.append(note) }
        return parts.joined(separator: "  ")
    }

    private static func amount(_ done: Int, of total: Int?, _ unit: Unit) -> String {
        switch unit {
        case .count(let name):
            return total.map { "\(done)/\($0) \(name)" } ?? "\(done) \(name)"
        case .bytes:
            return total.map { "\(mebibytes(done))/\(mebibytes($0)) MiB" } ?? "\(mebibytes(done)) MiB"
        }
    }

    private static func rate(_ rate: Double, _ unit: Unit) -> String {
        switch unit {
        case .count: "\(Int(rate.rounded()))/s"
        case .bytes: "\(mebibytes(Int(rate))) MiB/s"
        }
    }

    /// `12.3` (one decimal).
    private static func mebibytes(_ bytes: Int) -> String {
        String(format: "%.1f", Double(bytes) / 1_048_576)
    }

    /// `42s`, `3m05s`, `2h07m`.
    static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds < 360_000_000 else { return "--" }
        let whole = Int(seconds.rounded(.up))
        if whole < 60 { return "\(whole)s" }
        if whole < 3600 { return "\(whole / 60)m" + String(format: "%02d", whole % 60) + "s" }
        return "\(whole / 3600)h" + String(format: "%02d", whole / 60 % 60) + "m"
    }
}
