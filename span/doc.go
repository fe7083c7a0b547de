// Package span carries what one request did, in the manner of Dapper's
// spans: an ID, the caller's span ID, and the attributes, counters and
// timings a handler chose to note. A handler notes them on the span the
// server gives it:
//
//	func handle(ctx context.Context, req []byte, sp *span.Span) ([]byte, error) {
//		sp.Attr("command", "get")
//		sp.Start("db")
//		v, hit := lookup(req)
//		sp.Finish("db")
//		if hit {
//			sp.Increment("hits")
//		}
//		return v, nil
//	}
//
// The server makes one Span per request, hands it to the handler, and after
// the handler returns logs it (Fields, a map logrus takes as it is) and
// records it to a Recorder (Record; every stats.Recorder is one). span
// itself imports neither logrus nor stats. Most handlers never touch their span, so that path must cost
// nothing: the server reuses Span values across requests with Reset, which
// keeps their memory, and checks Touched before doing any logging or
// recording work. A handler that does use its span allocates only the first
// few times a pooled Span sees a given number of entries.
//
// A Span is safe for use by goroutines the handler starts, as long as they
// finish before the handler returns. After that the server reuses the Span
// for another request, so neither the handler nor anything it started may
// keep a reference to it.
package span
