import Foundation
import TradewireJSON

/// Why a CSV file could not be used.
public enum CSVError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No `SYMBOL.csv` in the directory.
    case fileNotFound(symbol: String, path: String)
    case unreadable(path: String)
    /// The header lacks required columns.
    case missingColumns(path: String, columns: [String])
    /// A data row that cannot be parsed; `line` is 1-based (the header is line 1).
    case badRow(path: String, line: Int, message: String)

    public var description: String {
        switch self {
        case .fileNotFound(let symbol, let path): "no CSV file for \(symbol): \(path) does not exist"
        case .unreadable(let path): "cannot read \(path)"
        case .missingColumns(let path, let columns):
            "\(path): missing column(s) \(columns.joined(separator: ", ")) (the header needs Date,Open,High,Low,Close,Volume)"
        case .badRow(let path, let line, let message): "\(path):\(line): \(message)"
        }
    }
}

/// Daily bars from `DIR/SYMBOL.csv` files, the common export format.
///
/// The header must name `Date` (or `Timestamp`/`Datetime`), `Open`, `High`, `Low`, `Close`
/// and `Volume` — any case, any order; other columns (`Adj Close`, …) are ignored. Dates are
/// `YYYY-MM-DD` or RFC 3339. Rows may be in any order (they are sorted by date); blank lines
/// are skipped; double-quoted fields are accepted. The result is the last `bars` rows dated
/// on or before the UTC day of `asOf`.
public struct CSVMarketDataProvider: MarketDataProvider {
    public let directory: String
    public var name: String { "csv:\(directory)" }

    public init(directory: String) { self.directory = directory }

    public func marketData(for symbol: String, bars: Int, asOf: Date) async throws -> MarketData {
        let all = try loadBars(symbol: symbol)
        let lastDay = TradingCalendar.utcDay(asOf)
        var end = all.count
        while end > 0, TradingCalendar.utcDay(all[end - 1].timestamp) > lastDay { end -= 1 }
        let start = max(0, end - max(0, bars))
        return MarketData(symbol: symbol, timeframe: "1Day", bars: Array(all[start..<end]))
    }

    /// The path read for a symbol: `DIR/SYMBOL.csv`, or `DIR/symbol.csv` when only the
    /// lower-case file exists.
    public func path(for symbol: String) -> String {
        let base = directory.hasSuffix("/") ? directory : directory + "/"
        let upper = base + symbol + ".csv"
        if FileManager.default.fileExists(atPath: upper) { return upper }
        let lower = base + symbol.lowercased() + ".csv"
        return FileManager.default.fileExists(atPath: lower) ? lower : upper
    }

    /// Every row of the symbol's file, sorted by date (oldest first).
    public func loadBars(symbol: String) throws(CSVError) -> [Bar] {
        let path = path(for: symbol)
        guard FileManager.default.fileExists(atPath: path) else { throw .fileNotFound(symbol: symbol, path: path) }
        guard let data = FileManager.default.contents(atPath: path) else { throw .unreadable(path: path) }
        return try Self.parse(String(decoding: data, as: UTF8.self), path: path)
    }

    /// Parses CSV text (see the type's documentation); `path` only labels errors.
    public static func parse(_ text: String, path: String) throws(CSVError) -> [Bar] {
        // Split on Characters: "\r\n" is a single Character, so `isNewline` handles LF and CRLF alike.
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        if let first = lines.first, first.hasPrefix("\u{FEFF}") { lines[0] = first.dropFirst() }
        var lineNumber = 0
        var header: [String]?
        var columns = (date: 0, open: 0, high: 0, low: 0, close: 0, volume: 0)
        var needed = 0
        var bars: [Bar] = []
        bars.reserveCapacity(lines.count)
        for rawLine in lines {
            lineNumber += 1
            let line = rawLine
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            let fields = splitFields(line)
            guard header != nil else {
                let names = fields.map { $0.lowercased() }
                header = names
                func find(_ candidates: [String]) -> Int? { names.firstIndex { candidates.contains($0) } }
                var missing: [String] = []
                let date = find(["date", "timestamp", "datetime", "time"])
                let open = find(["open"])
                let high = find(["high"])
                let low = find(["low"])
                let close = find(["close"])
                let volume = find(["volume"])
                if date == nil { missing.append("Date") }
                if open == nil { missing.append("Open") }
                if high == nil { missing.append("High") }
                if low == nil { missing.append("Low") }
                if close == nil { missing.append("Close") }
                if volume == nil { missing.append("Volume") }
                guard missing.isEmpty, let date, let open, let high, let low, let close, let volume else {
                    throw .missingColumns(path: path, columns: missing)
                }
                columns = (date, open, high, low, close, volume)
                needed = max(date, open, high, low, close, volume) + 1
                continue
            }
            guard fields.count >= needed else {
                throw .badRow(
                    path: path, line: lineNumber, message: "expected at least \(needed) fields, got \(fields.count)")
            }
            guard let timestamp = RFC3339.date(from: fields[columns.date]) else {
                throw .badRow(
                    path: path, line: lineNumber,
                    message: "invalid date \"\(fields[columns.date])\" (expected YYYY-MM-DD or RFC 3339)")
            }
            func number(_ index: Int, _ name: String, positive: Bool) throws(CSVError) -> Double {
                guard let value = Double(fields[index]), value.isFinite else {
                    throw .badRow(path: path, line: lineNumber, message: "invalid \(name) \"\(fields[index])\"")
                }
                guard positive ? value > 0 : value >= 0 else {
                    throw .badRow(
                        path: path, line: lineNumber,
                        message: "\(name) must be \(positive ? "positive" : "non-negative"), got \(fields[index])")
                }
                return value
            }
            bars.append(
                Bar(
                    timestamp: timestamp,
                    open: try number(columns.open, "Open", positive: true),
                    high: try number(columns.high, "High", positive: true),
                    low: try number(columns.low, "Low", positive: true),
                    close: try number(columns.close, "Close", positive: true),
                    volume: try number(columns.volume, "Volume", positive: false)))
        }
        guard header != nil else {
            throw .missingColumns(path: path, columns: ["Date", "Open", "High", "Low", "Close", "Volume"])
        }
        var sorted = true
        for i in bars.indices.dropFirst() where bars[i].timestamp < bars[i - 1].timestamp {
            sorted = false
            break
        }
        if !sorted {
            bars = bars.enumerated().sorted { ($0.element.timestamp, $0.offset) < ($1.element.timestamp, $1.offset) }
                .map(\.element)
        }
        return bars
    }

    /// Splits one line on commas, honouring double quotes (`""` inside quotes is a quote),
    /// and trims spaces around each field.
    static func splitFields(_ line: Substring) -> [String] {
        guard line.contains("\"") else {
            return line.split(separator: ",", omittingEmptySubsequences: false).map {
                String($0).trimmingASCIIWhitespace()
            }
        }
        var fields: [String] = []
        var current = ""
        var quoted = false
        var iterator = line.makeIterator()
        var pending: Character? = nil
        while let c = pending ?? iterator.next() {
            pending = nil
            if quoted {
                if c == "\"" {
                    if let next = iterator.next() {
                        if next == "\"" { current.append("\"") } else { quoted = false; pending = next }
                    } else {
                        quoted = false
                    }
                } else {
                    current.append(c)
                }
            } else if c == "\"" {
                quoted = true
            } else if c == "," {
                fields.append(current.trimmingASCIIWhitespace())
                current = ""
            } else {
                current.append(c)
            }
        }
        fields.append(current.trimmingASCIIWhitespace())
        return fields
    }
}
