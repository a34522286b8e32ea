/// Reads the top-level members of a message the JSON parser refused (too deep, say), without
/// any depth limit: enough to find which call a reply answers.
enum ReplyScanner {
    /// The integer `id` of a top-level object, when it has one.
    static func integerID(_ line: [UInt8]) -> Int? { scan(line).id }

    /// True for a top-level object with `method` and no `id` (a notification).
    static func isNotification(_ line: [UInt8]) -> Bool {
        let found = scan(line)
        return found.hasMethod && !found.hasID
    }

    private static func scan(_ line: [UInt8]) -> (id: Int?, hasID: Bool, hasMethod: Bool) {
        var i = 0
        var id: Int?
        var hasID = false
        var hasMethod = false
        func skipSpace() { while i < line.count, [0x20, 0x09, 0x0A, 0x0D].contains(line[i]) { i += 1 } }
        skipSpace()
        guard i < line.count, line[i] == UInt8(ascii: "{") else { return (nil, false, false) }
        i += 1
        while i < line.count {
            skipSpace()
            guard i < line.count, line[i] == UInt8(ascii: "\"") else { break }
            let keyStart = i + 1
            guard let keyEnd = stringEnd(line, from: i) else { break }
            let key = line[keyStart..<(keyEnd - 1)]
            i = keyEnd
            skipSpace()
            guard i < line.count, line[i] == UInt8(ascii: ":") else { break }
            i += 1
            skipSpace()
            let valueStart = i
            guard let valueEnd = valueEnd(line, from: i) else { break }
            if key.elementsEqual("id".utf8) {
                hasID = true
                id = Int(String(decoding: line[valueStart..<valueEnd], as: UTF8.self))
            } else if key.elementsEqual("method".utf8) {
                hasMethod = true
            }
            i = valueEnd
            skipSpace()
            guard i < line.count, line[i] == UInt8(ascii: ",") else { break }
            i += 1
        }
        return (id, hasID, hasMethod)
    }

    /// The index just past the string starting at `start` (a quote).
    private static func stringEnd(_ line: [UInt8], from start: Int) -> Int? {
        var i = start + 1
        while i < line.count {
            switch line[i] {
            case UInt8(ascii: "\\"): i += 2
            case UInt8(ascii: "\""): return i + 1
            default: i += 1
            }
        }
        return nil
    }

    /// The index just past the value starting at `start` (nested arrays and objects counted).
    private static func valueEnd(_ line: [UInt8], from start: Int) -> Int? {
        var i = start
        var depth = 0
        while i < line.count {
            let byte = line[i]
            switch byte {
            case UInt8(ascii: "\""):
                guard let end = stringEnd(line, from: i) else { return nil }
                i = end
                if depth == 0 { return i }
                continue
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                if depth == 0 { return i }
                depth -= 1
                if depth == 0 { return i + 1 }
            case UInt8(ascii: ","):
                if depth == 0 { return i }
            default:
                break
            }
            i += 1
        }
        return depth == 0 ? i : nil
    }
}
