import ArgumentParser
import TradewireClient
import TradewireJSON

extension Tradewire {
    struct Portfolio: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the paper book: positions with unrealized P&L, cash, equity and the risk budget.",
            discussion: """
                The book is the daemon's (get_portfolio); with a journal it survives restarts.

                Examples:
                  tradewire portfolio
                  tradewire portfolio --json | jq '.positions[] | select(.unrealized_pnl < 0)'
                """)

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await CommandRunner.run(connection) { client in
                let result = try await client.call("get_portfolio", timeout: CommandRunner.quickTimeout)
                CommandRunner.emit(result, json: connection.json, human: Self.render)
            }
        }

        static func render(_ book: JSONValue) -> [String] {
            var positions = Table(
                ["SYMBOL", "QTY", "AVG PRICE", "LAST", "MARKET VALUE", "UNREALIZED P&L"],
                alignments: [.left, .right, .right, .right, .right, .right])
            for position in book["positions"]?.arrayValue ?? [] {
                positions.append([
                    Format.cell(position["symbol"]), Format.cell(position["qty"]),
                    Format.fixed(position["avg_price"], 4), Format.fixed(position["last_price"], 4),
                    Format.fixed(position["market_value"], 2), Format.fixed(position["unrealized_pnl"], 2),
                ])
            }
            var lines = positions.rows.isEmpty ? ["no open positions"] : positions.render()
            var totals = KeyValueList()
            totals.append("cash", Format.fixed(book["cash"], 2))
            totals.append("equity", Format.fixed(book["equity"], 2))
            totals.append("realized P&L", Format.fixed(book["realized_pnl"], 2))
            totals.append("commissions", Format.fixed(book["commissions"], 2))
            totals.append("orders", Format.cell(book["orders"]))
            let budget = book["risk_budget"]
            totals.append(
                "risk budget",
                "\(Format.fixed(budget?["used"], 2)) of \(Format.fixed(budget?["limit"], 2)) used on \(Format.cell(budget?["day"]))"
            )
            totals.append("as of seq", Format.cell(book["as_of_seq"]))
            lines += [""] + totals.render()
            return lines
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a recorded iteration again through today's agents (a dry run) and show what differs.",
            discussion: """
                The iteration's market data comes from the journal; it runs against the account \
                and risk budget as they were when it started, and changes nothing. Exit status: \
                0 when every signal, approval and fill matches, 1 when something differs.

                Examples:
                  tradewire replay 5f3a9c1e-12
                  tradewire replay 5f3a9c1e-12 --strategy MeanReversion
                  tradewire replay 5f3a9c1e-12 --json | jq .replay.differences
                """)

        @OptionGroup var connection: ConnectionOptions

        @Argument(
            help: ArgumentHelp("The iteration_id to replay (see `tradewire history`).", valueName: "iteration-id"))
        var iterationID: String

        @Option(help: "Use this strategy instead of today's regime selector.")
        var strategy: Run.Strategy?

        func run() async throws {
            var params: JSONObject = ["replay": JSONValue(iterationID)]
            if let strategy { params["strategy"] = JSONValue(strategy.rawValue) }
            var differs = false
            try await CommandRunner.run(connection) { client in
                let result = try await client.call("run_pipeline", params, timeout: .seconds(315))
                differs = !(result["replay"]?["differences"]?.arrayValue ?? []).isEmpty
                CommandRunner.emit(result, json: connection.json, human: Self.render)
            }
            if differs { throw ExitCode(1) }
        }

        static func render(_ run: JSONValue) -> [String] {
            let replay = run["replay"]
            var lines = [
                "replayed \(Format.cell(replay?["of"])) as \(Format.cell(run["iteration_id"])) (dry run)"
            ]
            let differences = replay?["differences"]?.arrayValue ?? []
            guard !differences.isEmpty else {
                return lines + ["no differences: every signal, approval and fill matches"]
            }
            var table = Table(["STAGE", "SYMBOL", "FIELD", "RECORDED", "NOW"])
            for difference in differences {
                table.append([
                    Format.cell(difference["stage"]), Format.cell(difference["symbol"]),
                    Format.cell(difference["field"]),
                    Format.cell(difference["recorded"]), Format.cell(difference["now"]),
                ])
            }
            lines += ["\(differences.count) difference\(differences.count == 1 ? "" : "s"):", ""] + table.render()
            return lines
        }
    }
}
