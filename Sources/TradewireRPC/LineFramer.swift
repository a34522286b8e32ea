#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Splits a byte stream into newline-delimited messages with a byte limit (PROTOCOL §1).
///
/// `\r\n` is accepted, blank lines are skipped, and a line longer than the limit is
/// discarded up to its newline and reported once as ``Frame/tooLong``; the stream goes on.
public struct LineFramer: Sendable {
    public enum Frame: Sendable, Equatable {
        case line([UInt8])
        /// A line over the limit was dropped.
        case tooLong
    }

    public let maximumLineBytes: Int
    private var pending: [UInt8] = []
    private var discarding = false

    public init(maximumLineBytes: Int) {
        self.maximumLineBytes = maximumLineBytes
    }

    /// Bytes buffered for an incomplete line.
    public var bufferedBytes: Int { pending.count }

    /// Feeds bytes; calls `emit` for each complete frame, in order.
    public mutating func feed(_ chunk: UnsafeRawBufferPointer, _ emit: (Frame) -> Void) {
        feed(chunk, onLine: { emit(.line(Array($0))) }, onTooLong: { emit(.tooLong) })
    }

    /// Feeds bytes without copying lines: `onLine` sees each complete line (valid only during
    /// the call), `onTooLong` each discarded over-long line, in order.
    public mutating func feed(
        _ chunk: UnsafeRawBufferPointer, onLine: (UnsafeRawBufferPointer) -> Void, onTooLong: () -> Void
    ) {
        _ = feed(chunk, onLine: { line in onLine(line) }, onTooLong: onTooLong, shouldPause: { false })
    }

    /// Feeds bytes until `shouldPause` (asked after each frame) says stop.
    ///
    /// - Returns: how many bytes of `chunk` were consumed (all of them unless paused); the
    ///   caller keeps the rest and feeds it again later.
    public mutating func feed(
        _ chunk: UnsafeRawBufferPointer, onLine: (UnsafeRawBufferPointer) -> Void, onTooLong: () -> Void,
        shouldPause: () -> Bool
    ) -> Int {
        var start = 0
        let count = chunk.count
        while start < count {
            guard let newline = Self.newline(in: chunk, from: start) else {
                // No newline in the rest of the chunk: keep (or skip) it.
                if !discarding {
                    let remaining = count - start
                    if pending.count + remaining > maximumLineBytes + 1 {  // +1 allows a trailing \r
                        pending.removeAll(keepingCapacity: false)
                        discarding = true
                    } else {
                        pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[start..<count]))
                    }
                }
                return count
            }
            if discarding {
                discarding = false
                onTooLong()
            } else if pending.isEmpty {
                let line = UnsafeRawBufferPointer(rebasing: chunk[start..<newline])
                Self.emitLine(line, maximumLineBytes, onLine, onTooLong)
            } else {
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[start..<newline]))
                let line = pending
                pending.removeAll(keepingCapacity: true)
                line.withUnsafeBytes { Self.emitLine($0, maximumLineBytes, onLine, onTooLong) }
            }
            start = newline + 1
            if start < count && shouldPause() { return start }
        }
        return count
    }

    /// The index of the first `\n` at or after `start` (memchr: a word at a time).
    @inline(__always) private static func newline(in chunk: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard let base = chunk.baseAddress, start < chunk.count,
            let found = memchr(base + start, 0x0A, chunk.count - start)
        else { return nil }
        return base.distance(to: UnsafeRawPointer(found))
    }

    private static func emitLine(
        _ raw: UnsafeRawBufferPointer, _ limit: Int, _ onLine: (UnsafeRawBufferPointer) -> Void,
        _ onTooLong: () -> Void
    ) {
        var end = raw.count
        if end > 0 && raw[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        guard end <= limit else {
            onTooLong()
            return
        }
        // Blank (or whitespace-only) lines are ignored.
        var i = 0
        while i < end, raw[i] == 0x20 || raw[i] == 0x09 || raw[i] == 0x0D { i += 1 }
        guard i < end else { return }
        onLine(UnsafeRawBufferPointer(rebasing: raw[0..<end]))
    }
}
