/// A plain-text table with aligned columns: a header row, then the rows, two spaces apart.
struct Table {
    enum Alignment { case left, right }

    var headers: [String]
    var alignments: [Alignment]
    var rows: [[String]] = []

    init(_ headers: [String], alignments: [Alignment] = []) {
        self.headers = headers
        self.alignments = alignments + Array(repeating: .left, count: max(0, headers.count - alignments.count))
    }

    mutating func append(_ row: [String]) { rows.append(row) }

    /// The rendered lines (no trailing spaces).
    func render() -> [String] {
        var widths = headers.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        return ([headers] + rows).map { row in
            var line = ""
            for i in widths.indices {
                let cell = i < row.count ? row[i] : ""
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                let isLast = i == widths.count - 1
                line += alignments[i] == .right ? pad + cell : cell + (isLast ? "" : pad)
                if !isLast { line += "  " }
            }
            return String(line.reversed().drop(while: { $0 == " " }).reversed())
        }
    }
}

/// `key: value` lines with the values aligned.
struct KeyValueList {
    var entries: [(String, String)] = []

    mutating func append(_ key: String, _ value: String) { entries.append((key, value)) }

    func render() -> [String] {
        let width = (entries.map(\.0.count).max() ?? 0) + 1
        return entries.map { key, value in
            key + ":" + String(repeating: " ", count: width - key.count - 1) + " " + value
        }
    }
}
