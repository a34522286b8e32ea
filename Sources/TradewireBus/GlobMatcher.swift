/// A glob pattern (`*` any run, `?` one character) compiled once into a bit-parallel
/// automaton (Shift-And), so matching is one pass over the text: O(text length) word
/// operations, whatever the pattern, with no backtracking.
///
/// State `s` means "the first `s` non-star tokens of the pattern are matched". A text byte
/// moves every live state `s` to `s + 1` when token `s` accepts it, and keeps `s` alive
/// when a star sits just before token `s` (or at the end, for the last state). The text
/// matches when the last state is live after its final byte.
struct GlobMatcher: Sendable {
    /// Non-star tokens (literal bytes and `?`); at most ``EventName/maximumLength``.
    private let tokenCount: Int
    /// 1 when every state fits one word, else 3 (129 states at most).
    private let words: Int
    /// Per alphabet index (see ``Alphabet``) × word: the states whose token is that byte or `?`.
    private let tokenMasks: [UInt64]
    /// Per word: the states with a star self-loop.
    private let starMask: [UInt64]

    init(_ pattern: [UInt8]) {
        var tokens: [UInt8] = []
        var starBefore: [Bool] = [false]
        for byte in pattern {
            if byte == UInt8(ascii: "*") {
                starBefore[tokens.count] = true
            } else {
                tokens.append(byte)
                starBefore.append(false)
            }
        }
        tokenCount = tokens.count
        words = tokens.count < 64 ? 1 : 3
        var masks = [UInt64](repeating: 0, count: Alphabet.size * words)
        for (state, token) in tokens.enumerated() {
            let bit = UInt64(1) << UInt64(state & 63)
            let word = state >> 6
            if token == UInt8(ascii: "?") {
                for index in 0..<Alphabet.size { masks[index * words + word] |= bit }
            } else {
                masks[Alphabet.index(of: token) * words + word] |= bit
            }
        }
        var stars = [UInt64](repeating: 0, count: words)
        for (state, star) in starBefore.enumerated() where star {
            stars[state >> 6] |= UInt64(1) << UInt64(state & 63)
        }
        tokenMasks = masks
        starMask = stars
    }

    func matches(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        Alphabet.table.withUnsafeBufferPointer { alphabet in
            tokenMasks.withUnsafeBufferPointer { masks in
                words == 1
                    ? Self.matchesOneWord(text, alphabet, masks, starMask[0], tokenCount)
                    : matchesThreeWords(text, alphabet, masks)
            }
        }
    }

    private func matchesThreeWords(
        _ text: UnsafeBufferPointer<UInt8>, _ alphabet: UnsafeBufferPointer<Int>, _ masks: UnsafeBufferPointer<UInt64>
    ) -> Bool {
        let star0 = starMask[0]
        let star1 = starMask[1]
        let star2 = starMask[2]
        var d0: UInt64 = 1
        var d1: UInt64 = 0
        var d2: UInt64 = 0
        for byte in text {
            let base = alphabet[Int(byte)] &* 3
            let a0 = d0 & masks[base]
            let a1 = d1 & masks[base &+ 1]
            let a2 = d2 & masks[base &+ 2]
            d2 = (a2 << 1) | (a1 >> 63) | (d2 & star2)
            d1 = (a1 << 1) | (a0 >> 63) | (d1 & star1)
            d0 = (a0 << 1) | (d0 & star0)
            if d0 | d1 | d2 == 0 { return false }
        }
        let last = tokenCount
        let word = last >> 6 == 0 ? d0 : (last >> 6 == 1 ? d1 : d2)
        return word & (UInt64(1) << UInt64(last & 63)) != 0
    }

    private static func matchesOneWord(
        _ text: UnsafeBufferPointer<UInt8>, _ alphabet: UnsafeBufferPointer<Int>, _ masks: UnsafeBufferPointer<UInt64>,
        _ star: UInt64, _ last: Int
    ) -> Bool {
        var d: UInt64 = 1
        for byte in text {
            d = ((d & masks[alphabet[Int(byte)]]) << 1) | (d & star)
            if d == 0 { return false }
        }
        return d & (UInt64(1) << UInt64(last)) != 0
    }
}

/// The event-type alphabet (`A-Z a-z 0-9 _ . : -`) as dense indexes; every other byte
/// shares one index that only `?` accepts.
enum Alphabet {
    /// 66 name bytes plus one for anything else.
    static let size = 67

    /// Byte → index (256 entries).
    static let table: [Int] = {
        var table = [Int](repeating: 66, count: 256)
        var next = 0
        for byte in UInt8(0)...UInt8(255) where EventName.isNameByte(byte) {
            table[Int(byte)] = next
            next += 1
        }
        return table
    }()

    @inline(__always) static func index(of byte: UInt8) -> Int { table[Int(byte)] }
}
