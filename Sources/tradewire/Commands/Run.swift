import ArgumentParser
import TradewireClient
import TradewireJSON

extension Tradewire {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run one pipeline iteration and show what it decided.",
            discussion: """
                Without symbols, the daemon's configured list. Prints the iteration, then one row per \
                symbol (action, strategy, confidence after the quant stage, risk approval, quantity, \
                fill, rejection reason), the audit summary and any stage errors. --dry-run sends \
                nothing to the broker and changes no portfolio state.

                Examples:
                  tradewire run
                  tradewire run AAPL MSFT --dry-run
                  tradewire run SPY --strategy MeanReversion --timeout 30
                  tradewire run --json | jq .audit_report.summary
                """)

        enum Strategy: String, ExpressibleByArgument, CaseIterable {
            case TrendFollowing, MomentumRotation, MeanReversion, Breakout, VolatilityBreakout
            case RelativeStrength, SectorRotation, DualMomentum, MovingAverageEnvelope, BollingerBands
        }

        @OptionGroup var connection: ConnectionOptions

        @Argument(help: ArgumentHelp("Symbols to trade (upper-cased by the daemon).", valueName: "symbol"))
        var symbols: [String] = []

        @Option(help: "Use this strategy for every symbol instead of the regime selector.")
        var strategy: Strategy?

        @Flag(help: "Show what would be executed without sending orders.")
        var dryRun = false

        // Unconditional parsing, so that `--timeout -5` is read as a value and refused with
        // a message saying why, not as an unknown flag.
        @Option(
            parsing: .unconditional,
            help: ArgumentHelp("Pipeline deadline in seconds: 0.001...3600 (default 300).", valueName: "seconds"))
        var timeout: String?

        /// The deadline in seconds, when given.
        var timeoutSeconds: Double? { timeout.flatMap { Double($0) } }

        func validate() throws {
            guard let timeout else { return }
            guard let seconds = timeoutSeconds, seconds.isFinite else {
                throw ValidationError("--timeout must be a number of seconds, got \"\(timeout)\".")
            }
            guard seconds > 0 else {
                throw ValidationError("--timeout must be positive (0.001...3600 seconds), got \(timeout).")
            }
            guard seconds <= 3600 else {
                throw ValidationError("--timeout must be at most 3600 seconds, got \(timeout).")
            }
        }

        func run() async throws {
            var params: JSONObject = [:]
            if !symbols.isEmpty { params["symbols"] = .array(symbols.map { JSONValue($0) }) }
            if let strategy { params["strategy"] = JSONValue(strategy.rawValue) }
            if dryRun { params["dry_run"] = true }
            if let timeout = timeoutSeconds {
                params["timeout_ms"] = JSONValue(max(1, Int((timeout * 1000).rounded())))
            }
            // The call outlives the pipeline deadline so the daemon's own timeout error comes back.
            let callTimeout = Duration.seconds(timeoutSeconds ?? 300) + .seconds(15)
            try await CommandRunner.run(connection) { client in
                let result = try await client.call("run_pipeline", params, timeout: callTimeout)
                CommandRunner.emit(result, json: connection.json, human: Self.render)
            }
        }

        static func render(_ run: JSONValue) -> [String] {
            var header = KeyValueList()
            header.append("iteration", Format.cell(run["iteration"]))
            header.append("id", Format.cell(run["iteration_id"]))
            header.append("duration", Format.duration(seconds: run["duration_seconds"]?.doubleValue))
            let symbols = (run["symbols"]?.arrayValue ?? []).map { Format.cell($0) }
            header.append("symbols", symbols.joined(separator: ", "))
            if run["dry_run"]?.boolValue == true { header.append("dry run", "yes (nothing sent to the broker)") }
            var lines = header.render()

            lines += [""] + signalTable(run).render()

            if let audit = run["audit_report"], !audit.isNull {
                lines += ["", "audit: " + Format.cell(audit["summary"])]
                if let recommendations = audit["recommendations"], !recommendations.isNull {
                    lines.append("recommendations: " + Format.cell(recommendations))
                }
            }
            let errors = run["errors"]?.arrayValue ?? []
            if !errors.isEmpty {
                lines += ["", "errors:"]
                for error in errors {
                    let symbol = error["symbol"].flatMap { $0.isNull ? nil : Format.cell($0) }
                    lines.append(
                        "  \(Format.cell(error["stage"]))\(symbol.map { " \($0)" } ?? ""): \(Format.cell(error["message"]))"
                    )
                }
            }
            return lines
        }

        /// One row per signal (per symbol when it produced none), its final state merged from
        /// the validated, approved/rejected and execution lists.
        static func signalTable(_ run: JSONValue) -> Table {
            func bySymbol(_ key: String) -> [String: JSONValue] {
                var map: [String: JSONValue] = [:]
                for item in run[key]?.arrayValue ?? [] {
                    let signal = item["signal"] ?? item
                    if let symbol = signal["symbol"]?.stringValue { map[symbol] = item }
                }
                return map
            }
            let validated = bySymbol("validated_signals")
            let approved = bySymbol("approved_signals")
            let rejected = bySymbol("rejected_signals")
            let executions = bySymbol("execution_results")
            let dryRun = run["dry_run"]?.boolValue == true

            var table = Table(
                ["SYMBOL", "ACTION", "STRATEGY", "CONF", "APPROVED", "QTY", "FILL", "REASON"],
                alignments: [.left, .left, .left, .right, .left, .right, .right, .left])
            let signals = run["signals"]?.arrayValue ?? []
            var covered = Set<String>()
            for signal in signals {
                let symbol = signal["symbol"]?.stringValue ?? "-"
                covered.insert(symbol)
                let final = approved[symbol] ?? rejected[symbol] ?? validated[symbol] ?? signal
                let approval: String =
                    if approved[symbol] != nil { "yes" } else if rejected[symbol] != nil { "no" } else { "-" }
                table.append([
                    symbol, Format.cell(signal["action"]), Format.cell(signal["strategy_name"]),
                    Format.fixed(final["confidence"], 2), approval, Format.cell(final["qty"]),
                    fill(executions[symbol], dryRun: dryRun), Format.cell(final["rejection_reason"]),
                ])
            }
            for symbol in (run["symbols"]?.arrayValue ?? []).compactMap(\.stringValue) where !covered.contains(symbol) {
                table.append([symbol, "-", "-", "-", "-", "-", "-", "no signal"])
            }
            return table
        }

        /// The fill price; `~price` for a dry run's estimate; `failed` when the order failed.
        static func fill(_ execution: JSONValue?, dryRun: Bool) -> String {
            guard let execution else { return "-" }
            let price = execution["fill_price"]?.doubleValue
            if execution["executed"]?.boolValue == true { return price.map { Format.fixed($0, 2) } ?? "filled" }
            if let error = execution["error"], !error.isNull { return "failed" }
            if dryRun, let price { return "~" + Format.fixed(price, 2) }
            return "-"
        }
    }
}
