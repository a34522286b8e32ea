/// Fast fixed-point formatting for messages and reasoning (no `String(format:)`).
enum Format {
    /// `x` with exactly `digits` decimals (0…9), rounded half away from zero; `nan`/`inf` as such.
    static func fixed(_ x: Double, _ digits: Int = 2) -> String {
        guard x.isFinite else { return x.isNaN ? "nan" : (x < 0 ? "-inf" : "inf") }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(x) * scale).rounded()
        guard scaled < 9.0e18 else { return String(x) }
        let n = UInt64(scaled)
        let p = UInt64(scale)
        let whole = n / p
        let negative = x < 0 && n != 0
        var text = (negative ? "-" : "") + String(whole)
        if digits > 0 {
            var fraction = String(n % p)
            while fraction.count < digits { fraction = "0" + fraction }
            text += "." + fraction
        }
        return text
    }

    /// `x` as a signed percentage with `digits` decimals, e.g. `+12.34%`.
    static func signedPercent(_ x: Double, _ digits: Int = 2) -> String {
        (x > 0 ? "+" : "") + fixed(x, digits) + "%"
    }

    /// Left-pads a non-negative integer with zeros to `width` digits.
    static func zeroPadded(_ value: Int, width: Int) -> String {
        var text = String(value)
        while text.count < width { text = "0" + text }
        return text
    }
}
