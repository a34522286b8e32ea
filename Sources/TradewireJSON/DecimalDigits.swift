/// An integer's decimal text, written on the stack: every event's seq, and every receipt's,
/// is written through here, without a `String` in between.
public enum DecimalDigits {
    /// Calls `body` with the decimal text of `value` (`-` first when negative).
    @inline(__always)
    public static func withText<R>(of value: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        // 24 bytes: `Int.min` takes 20 (19 digits and the sign).
        var storage: (UInt64, UInt64, UInt64) = (0, 0, 0)
        return try withUnsafeMutableBytes(of: &storage) { raw in
            var magnitude = value.magnitude
            var start = raw.count
            repeat {
                start -= 1
                raw[start] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            if value < 0 {
                start -= 1
                raw[start] = UInt8(ascii: "-")
            }
            return try body(UnsafeRawBufferPointer(rebasing: raw[start...]))
        }
    }
}
