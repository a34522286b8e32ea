import Foundation
import Testing

@testable import TradewireTrading

@Suite struct PaperBrokerTests {
    func broker(cash: Double = 100_000, shorting: Bool = false) -> PaperBroker {
        PaperBroker(startingCash: cash, slippageBps: 5, commissionPerShare: 0.005, allowShorting: shorting)
    }

    @Test func exactLedgerAfterBuysAndSells() async throws {
        let b = broker()
        // buy 10 @ 100 + 5 bps = 100.05; cost 1000.50 + commission 0.05
        let buy = try await b.submit(symbol: "AAPL", side: .buy, quantity: 10, referencePrice: 100)
        #expect(buy == Fill(orderID: "paper-000001", fillPrice: 100.05, quantity: 10, side: .buy, commission: 0.05))
        var account = await b.account()
        #expect(account.cash == Money(units: 989_994_500))  // 100 000 − 1 000.55 = 98 999.45
        #expect(account.positions == ["AAPL": 10])
        #expect(account.equity == Money(dollars: 98_999.45 + 1_000))  // marked at 100

        // sell 4 @ 110 − 5 bps = 109.945; proceeds 439.78 − 0.02
        let sell = try await b.submit(symbol: "AAPL", side: .sell, quantity: 4, referencePrice: 110)
        #expect(sell.fillPrice == 109.945 && sell.commission == 0.02 && sell.orderID == "paper-000002")
        account = await b.account()
        #expect(account.cash == Money(dollars: 99_439.21))
        #expect(account.cash.description == "$99439.2100")
        #expect(account.positions == ["AAPL": 6])
        #expect(account.equity == Money(dollars: 99_439.21 + 6 * 110))
        #expect(await b.equity == 100_099.21)
        #expect(account.commissionPaid == Money(dollars: 0.07))
        #expect(account.orders == 2)

        // odd price: 123.4567 × 1.0005 = 123.51842835 → 123.5184 (rounded to 1/10 000)
        let odd = try await b.submit(symbol: "MSFT", side: .buy, quantity: 3, referencePrice: 123.4567)
        #expect(odd.fillPrice == 123.5184 && odd.commission == 0.015)
        account = await b.account()
        #expect(account.cash == Money(dollars: 99_439.21) - Money(dollars: 123.5184) * 3 - Money(dollars: 0.015))
        // marks move equity, not cash
        await b.mark(["AAPL": 120, "MSFT": 130])
        account = await b.account()
        #expect(account.equity == account.cash + Money(dollars: 120) * 6 + Money(dollars: 130) * 3)
        // selling a whole position removes it
        _ = try await b.submit(symbol: "AAPL", side: .sell, quantity: 6, referencePrice: 120)
        #expect(await b.account().positions == ["MSFT": 3])
    }

    @Test func noDriftOverTenThousandSmallTrades() async throws {
        let b = broker(cash: 1_000)
        for i in 0..<10_000 {
            _ = try await b.submit(
                symbol: "PENNY", side: i % 2 == 0 ? .buy : .sell, quantity: 1, referencePrice: 0.1234)
        }
        // buy fill 0.1234·1.0005 = 0.12346170 → 1235 units; sell 0.1234·0.9995 = 0.12333830 → 1233 units; commission 50 units
        let expected = Money(units: 10_000_000 - 5_000 * (1_235 + 50) + 5_000 * (1_233 - 50))
        let account = await b.account()
        #expect(account.cash == expected)
        #expect(account.cash == Money(dollars: 1_000 - 5_000 * 0.1285 + 5_000 * 0.1183))
        #expect(account.positions.isEmpty)
        #expect(account.commissionPaid == Money(units: 10_000 * 50))
        #expect(account.orders == 10_000)
    }

    @Test func shortingRefusedByDefault() async throws {
        let b = broker()
        await #expect(throws: BrokerError.noPosition(symbol: "TSLA", held: 0, requested: 5)) {
            try await b.submit(symbol: "TSLA", side: .sell, quantity: 5, referencePrice: 200)
        }
        _ = try await b.submit(symbol: "TSLA", side: .buy, quantity: 2, referencePrice: 200)
        do {
            _ = try await b.submit(symbol: "TSLA", side: .sell, quantity: 3, referencePrice: 200)
            Issue.record("expected a refusal")
        } catch {
            #expect(error.message.hasPrefix("no position to sell (shorting disabled)"))
        }
        #expect(await b.account().positions == ["TSLA": 2])

        let shorts = broker(shorting: true)
        _ = try await shorts.submit(symbol: "TSLA", side: .sell, quantity: 5, referencePrice: 200)
        let account = await shorts.account()
        #expect(account.positions == ["TSLA": -5])
        // proceeds 5 × 199.9 − 0.025; equity = cash − 5 × 200
        #expect(account.cash == Money(dollars: 100_000 + 999.5 - 0.025))
        #expect(account.equity == Money(dollars: 100_000 + 999.5 - 0.025 - 1_000))
    }

    @Test func insufficientCash() async throws {
        let b = broker(cash: 1_000)
        do {
            _ = try await b.submit(symbol: "AAPL", side: .buy, quantity: 100, referencePrice: 100)
            Issue.record("expected a refusal")
        } catch {
            guard case .insufficientCash(let required, let available) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(required == Money(dollars: 10_005.5))  // 100 × 100.05 + 0.50
            #expect(available == Money(dollars: 1_000))
            #expect(error.message.hasPrefix("insufficient cash"))
        }
        let account = await b.account()
        #expect(account.cash == Money(dollars: 1_000) && account.orders == 0 && account.positions.isEmpty)
        await #expect(throws: BrokerError.invalidQuantity(0)) {
            try await b.submit(symbol: "AAPL", side: .buy, quantity: 0, referencePrice: 100)
        }
        await #expect(throws: BrokerError.invalidPrice(symbol: "AAPL")) {
            try await b.submit(symbol: "AAPL", side: .buy, quantity: 1, referencePrice: .nan)
        }
    }

    @Test func uniqueSequentialOrderIDsAndQuotesChangeNothing() async throws {
        let b = broker()
        let quote = try await b.quote(symbol: "AAPL", side: .buy, quantity: 10, referencePrice: 100)
        #expect(quote.fillPrice == 100.05 && quote.commission == 0.05)
        #expect(try await b.quote(symbol: "AAPL", side: .sell, quantity: 10, referencePrice: 100).fillPrice == 99.95)
        #expect(await b.account().orders == 0)
        var ids: [String] = []
        for i in 0..<12 {
            ids.append(try await b.submit(symbol: "S\(i % 3)", side: .buy, quantity: 1, referencePrice: 10).orderID)
        }
        #expect(Set(ids).count == 12)
        #expect(ids.first == "paper-000001" && ids.last == "paper-000012")
    }

    @Test func moneyRounding() {
        #expect(Money(dollars: 1.23456).units == 12_346)
        #expect(Money(dollars: 0.00005).units == 1)  // half away from zero
        #expect(Money(dollars: -0.00005).units == -1)
        #expect(Money(dollars: 123.4567).units == 1_234_567)
        #expect(Money(dollars: .nan) == .zero)
        #expect(Money(dollars: 2.5) * 4 == Money(dollars: 10))
        #expect(Money(dollars: 1) - Money(dollars: 1.5) < .zero)
        #expect(Money(units: -15).description == "-$0.0015")
        #expect(Money(dollars: 0.1) + Money(dollars: 0.2) == Money(dollars: 0.3))
    }
}
