/// The parser's fast path for a value that is only forwarded: validate it and copy its
/// compact text, without building a tree.
extension JSONParser {
    /// Validates the value at the cursor and returns its compact text, byte for byte what
    /// ``JSONWriter`` writes for the parsed value; the cursor moves past it. Returns nil,
    /// with the cursor unmoved, for anything it does not copy verbatim (an escape the writer
    /// would spell differently) or that is invalid: the tree parser then takes over and
    /// reports errors as usual.
    mutating func compactValue(depth: Int) -> RawJSON? {
        let start = index
        var out: [UInt8] = []
        out.reserveCapacity(buffer.count - index)
        guard copyValue(depth: depth, into: &out) else {
            index = start
            return nil
        }
        // The reservation was the rest of the line: when other members follow the value (a
        // large `metadata`), keep an exact copy rather than the whole reservation with the event.
        if out.capacity > 2 * out.count + 256 { return RawJSON(compact: out.withUnsafeBufferPointer { Array($0) }) }
        return RawJSON(compact: out)
    }

    private mutating func copyValue(depth: Int, into out: inout [UInt8]) -> Bool {
        guard index < buffer.count else { return false }
        switch buffer[index] {
        case UInt8(ascii: "{"): return copyObject(depth: depth + 1, into: &out)
        case UInt8(ascii: "["): return copyArray(depth: depth + 1, into: &out)
        case UInt8(ascii: "\""): return copyString(into: &out)
        case UInt8(ascii: "t"): return copyLiteral("true", into: &out)
        case UInt8(ascii: "f"): return copyLiteral("false", into: &out)
        case UInt8(ascii: "n"): return copyLiteral("null", into: &out)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return copyNumber(into: &out)
        default: return false
        }
    }

    private mutating func copyObject(depth: Int, into out: inout [UInt8]) -> Bool {
        guard let empty = open("{", "}", depth: depth, into: &out) else { return false }
        if empty { return true }
        while true {
            skipWhitespace()
            guard index < buffer.count, buffer[index] == UInt8(ascii: "\""), copyString(into: &out) else {
                return false
            }
            skipWhitespace()
            guard index < buffer.count, buffer[index] == UInt8(ascii: ":") else { return false }
            index += 1
            out.append(UInt8(ascii: ":"))
            skipWhitespace()
            guard copyValue(depth: depth, into: &out), let closed = closeOrContinue("}", into: &out) else {
                return false
            }
            if closed { return true }
        }
    }

    private mutating func copyArray(depth: Int, into out: inout [UInt8]) -> Bool {
        guard let empty = open("[", "]", depth: depth, into: &out) else { return false }
        if empty { return true }
        while true {
            skipWhitespace()
            guard copyValue(depth: depth, into: &out), let closed = closeOrContinue("]", into: &out) else {
                return false
            }
            if closed { return true }
        }
    }

    /// Copies a container's opening byte; true when it is empty (its closing byte copied
    /// too), nil when it nests too deep.
    private mutating func open(
        _ opening: Unicode.Scalar, _ close: Unicode.Scalar, depth: Int, into out: inout [UInt8]
    ) -> Bool? {
        guard depth <= Self.maximumDepth else { return nil }
        index += 1
        out.append(UInt8(ascii: opening))
        skipWhitespace()
        guard index < buffer.count, buffer[index] == UInt8(ascii: close) else { return false }
        index += 1
        out.append(UInt8(ascii: close))
        return true
    }

    /// After a member or element: copies `,` (false: more follow) or `close` (true: the
    /// container ended); nil for anything else.
    private mutating func closeOrContinue(_ close: Unicode.Scalar, into out: inout [UInt8]) -> Bool? {
        skipWhitespace()
        guard index < buffer.count else { return nil }
        let byte = buffer[index]
        guard byte == UInt8(ascii: ",") || byte == UInt8(ascii: close) else { return nil }
        index += 1
        out.append(byte)
        return byte != UInt8(ascii: ",")
    }

    private mutating func copyLiteral(_ literal: StaticString, into out: inout [UInt8]) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard index + count <= buffer.count else { return false }
        let base = literal.utf8Start
        for i in 0..<count where buffer[index + i] != base[i] { return false }
        out.append(contentsOf: UnsafeBufferPointer(start: base, count: count))
        index += count
        return true
    }

    private mutating func copyNumber(into out: inout [UInt8]) -> Bool {
        let start = index
        if buffer[index] == UInt8(ascii: "-") { index += 1 }
        guard index < buffer.count else { return false }
        if buffer[index] == UInt8(ascii: "0") {
            index += 1
        } else if isDigit(buffer[index]) {
            while index < buffer.count, isDigit(buffer[index]) { index += 1 }
        } else {
            return false
        }
        if index < buffer.count, buffer[index] == UInt8(ascii: ".") {
            index += 1
            guard index < buffer.count, isDigit(buffer[index]) else { return false }
            while index < buffer.count, isDigit(buffer[index]) { index += 1 }
        }
        if index < buffer.count, buffer[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            if index < buffer.count, buffer[index] == UInt8(ascii: "+") || buffer[index] == UInt8(ascii: "-") {
                index += 1
            }
            guard index < buffer.count, isDigit(buffer[index]) else { return false }
            while index < buffer.count, isDigit(buffer[index]) { index += 1 }
        }
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[start..<index]))
        return true
    }

    /// A string whose only escapes are the ones ``JSONWriter`` writes the same way
    /// (`\"`, `\\`, `\n`, `\r`, `\t`) and whose other bytes are valid UTF-8 (no control bytes).
    private mutating func copyString(into out: inout [UInt8]) -> Bool {
        let start = index
        index += 1
        while index < buffer.count {
            let byte = buffer[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[start..<index]))
                return true
            case UInt8(ascii: "\\"):
                guard index + 1 < buffer.count else { return false }
                switch buffer[index + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 2
                default:
                    return false
                }
            case 0..<0x20:
                return false
            case 0x20..<0x80:
                index += 1
            default:
                guard let length = utf8SequenceLength(at: index) else { return false }
                index += length
            }
        }
        return false
    }

    /// The length of the valid UTF-8 sequence starting at `i` (a lead byte ≥ 0x80), or nil
    /// (overlong forms, surrogates and values above U+10FFFF are invalid, as in
    /// `String(validating:)`).
    private func utf8SequenceLength(at i: Int) -> Int? {
        let lead = buffer[i]
        let length: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; high = 0x9F
        case 0xF0: length = 4; low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; high = 0x8F
        default: return nil
        }
        guard i + length <= buffer.count else { return nil }
        let second = buffer[i + 1]
        guard second >= low && second <= high else { return nil }
        for k in 2..<max(2, length) where buffer[i + k] & 0xC0 != 0x80 { return nil }
        return length
    }
}
