import Foundation

/// Unbuffered line output, so `tradewire subscribe --json | jq` sees every event at once.
enum Console {
    /// False when stdout is gone (the reader of a pipe exited). SIGPIPE is ignored in this
    /// process (SwiftNIO ignores it), so a closed pipe shows up here as EPIPE.
    @discardableResult
    static func out(_ line: String) -> Bool {
        do {
            try FileHandle.standardOutput.write(contentsOf: Data((line + "\n").utf8))
            return true
        } catch {
            return false
        }
    }

    static func err(_ line: String) {
        try? FileHandle.standardError.write(contentsOf: Data((line + "\n").utf8))
    }
}
