//! Paged listings that cannot be cut short silently.
//!
//! A listing is read page by page, each page asked for with the token of
//! the one before. EC2 sends a token whenever more items remain, so a last
//! page that holds as many entries as were asked for and carries no token
//! is where a dropped NextToken hides: that read is *suspect*.
//!
//! A suspect read is confirmed from where its last page began: that page is
//! asked for again, with the same token and another page size (one entry
//! fewer at EC2's maximum sizes, one more at the smallest), and the listing
//! followed from there to its end. If the listing really ended, this costs
//! one or two calls (at one fewer: the page less one entry, then the one
//! entry) and its last page is not full; if a token was dropped, it reads on
//! past the cut. Only the last page is read again, not the whole listing, so
//! a listing that ends on a full page by chance costs at most two calls
//! more, not twice its pages. Should the tail read fail (a token EC2 will
//! not take at another size), or end full again at both other sizes, the
//! whole listing is read again at the other sizes; a listing that ends full
//! at all three sizes is an error, never a guess.

use std::collections::HashSet;
use std::future::Future;

/// The smallest page every paged read accepts (DescribeInstances and
/// DescribeImages refuse fewer than 5).
pub(crate) const MIN_PAGE: i32 = 5;

/// Most pages one listing may take before it is given up as endless (a
/// server handing out tokens forever): far more than any real account needs
/// at EC2's page sizes.
pub(crate) const MAX_PAGES: usize = 10_000;

/// One page of a listing as a fetch returns it.
#[derive(Debug)]
pub(crate) struct Page<T> {
    /// The items the page yields.
    pub(crate) items: Vec<T>,
    /// How many entries of the listing the page held, which is what its
    /// page size counts (reservations for DescribeInstances, whose items
    /// are instances).
    pub(crate) entries: usize,
    /// The token of the next page.
    pub(crate) next: Option<String>,
}

impl<T> Page<T> {
    /// A page whose entries are its items.
    pub(crate) fn of(items: Vec<T>, next: Option<String>) -> Page<T> {
        Page {
            entries: items.len(),
            items,
            next,
        }
    }
}

/// A read of a listing from some token to its end.
#[derive(Debug)]
pub(crate) struct Read<T> {
    /// Every item read, in the listing's order.
    pub(crate) items: Vec<T>,
    /// Whether the last page could hide a dropped token.
    pub(crate) suspect: bool,
    /// The token the last page was asked for with (`None`: the first page).
    last_start: Option<String>,
    /// How many of `items` the last page yielded.
    last_items: usize,
}

/// Page sizes for confirming a listing: `size` first, then two neighbours.
/// A listing of T entries ends on a full page for all three only if T is a
/// multiple of all three sizes, which for T below their least common
/// multiple (60 for 3, 4, 5; ~10^9 for 998..1000) means T = 0.
pub(crate) fn confirming_sizes(size: i32) -> [i32; 3] {
    if size - 2 >= MIN_PAGE {
        [size, size - 1, size - 2]
    } else {
        [size, size + 1, size + 2]
    }
}

/// Reads every page from `start` (`None`: the listing's beginning) with
/// `fetch(token, size)`. An empty token ends the listing like a missing one;
/// a token sent before is an error (the SDK's paginators stop there
/// silently, which is a short list); so is a listing past [`MAX_PAGES`].
/// The pages read before a failure are not returned.
pub(crate) async fn read_from<T, F, Fut>(
    what: &str,
    size: i32,
    start: Option<String>,
    fetch: &F,
) -> Result<Read<T>, String>
where
    F: Fn(Option<String>, i32) -> Fut,
    Fut: Future<Output = Result<Page<T>, String>>,
{
    let mut items = Vec::new();
    let mut seen = HashSet::new();
    let mut token = start;
    for _ in 0..MAX_PAGES {
        let page = fetch(token.clone(), size).await?;
        let full = usize::try_from(size).is_ok_and(|size| page.entries >= size);
        let last_items = page.items.len();
        items.extend(page.items);
        match page.next.filter(|t| !t.is_empty()) {
            None => {
                return Ok(Read {
                    items,
                    suspect: full,
                    last_start: token,
                    last_items,
                })
            }
            Some(next) if !seen.insert(next.clone()) => {
                return Err(format!(
                "{what}: EC2 sent a NextToken it had sent before, so the listing cannot be trusted"
            ))
            }
            Some(next) => token = Some(next),
        }
    }
    Err(format!("{what}: more than {MAX_PAGES} pages"))
}

/// The items of `read` (made at `size` per page), confirmed when it is
/// suspect (see the module doc): its last page read again at the other page
/// sizes from where it began, and failing that the whole listing.
pub(crate) async fn confirm<T, F, Fut>(
    what: &str,
    size: i32,
    read: Read<T>,
    fetch: &F,
) -> Result<Vec<T>, String>
where
    F: Fn(Option<String>, i32) -> Fut,
    Fut: Future<Output = Result<Page<T>, String>>,
{
    if !read.suspect {
        return Ok(read.items);
    }
    let sizes = confirming_sizes(size);
    let Read {
        mut items,
        last_start,
        last_items,
        ..
    } = read;
    // From the first page, a tail read is a whole read.
    if last_start.is_some() {
        for size in &sizes[1..] {
            match read_from(what, *size, last_start.clone(), fetch).await {
                Ok(tail) if !tail.suspect => {
                    items.truncate(items.len().saturating_sub(last_items));
                    items.extend(tail.items);
                    return Ok(items);
                }
                Ok(_) => {}
                // A token EC2 will not take again: read it all, below.
                Err(_) => break,
            }
        }
    }
    for size in &sizes[1..] {
        let read = read_from(what, *size, None, fetch).await?;
        if !read.suspect {
            return Ok(read.items);
        }
    }
    Err(format!(
        "{what}: each of {} reads (page sizes {sizes:?}) ended on a full page without a NextToken, so the listing may have been cut short",
        sizes.len()
    ))
}

/// Every item of a listing, read with `fetch(token, size)` at `size` per
/// page and confirmed where its last page was full ([`confirm`]).
pub(crate) async fn listing<T, F, Fut>(what: &str, size: i32, fetch: F) -> Result<Vec<T>, String>
where
    F: Fn(Option<String>, i32) -> Fut,
    Fut: Future<Output = Result<Page<T>, String>>,
{
    let read = read_from(what, size, None, &fetch).await?;
    confirm(what, size, read, &fetch).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn run<T>(future: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    /// A listing of `total` items (0, 1, 2, ...) served like EC2: the token
    /// is the position of the next item, valid at any page size. `drops`
    /// says, for the n-th call, whether its token is dropped; every call is
    /// recorded as (token, size).
    struct Server {
        total: u32,
        drops: Box<dyn Fn(usize) -> bool>,
        calls: RefCell<Vec<(Option<String>, i32)>>,
    }

    impl Server {
        fn new(total: u32, drops: impl Fn(usize) -> bool + 'static) -> Server {
            Server {
                total,
                drops: Box::new(drops),
                calls: RefCell::new(Vec::new()),
            }
        }

        fn fetch(
            &self,
            token: Option<String>,
            size: i32,
        ) -> impl Future<Output = Result<Page<u32>, String>> {
            let n = self.calls.borrow().len();
            self.calls.borrow_mut().push((token.clone(), size));
            let answer = token
                .as_deref()
                .map_or(Ok(0), str::parse::<u32>)
                .map_err(|_| "InvalidPaginationToken".to_string())
                .map(|start| {
                    let end = (start + u32::try_from(size).unwrap_or(1)).min(self.total);
                    let next = (end < self.total && !(self.drops)(n)).then(|| end.to_string());
                    Page::of((start..end).collect(), next)
                });
            async move { answer }
        }

        fn sizes(&self) -> Vec<i32> {
            self.calls.borrow().iter().map(|(_, s)| *s).collect()
        }
    }

    fn read_all(server: &Server, size: i32) -> Result<Vec<u32>, String> {
        run(listing("templates", size, |t, s| server.fetch(t, s)))
    }

    #[test]
    fn a_short_last_page_is_trusted_at_once() {
        let server = Server::new(12, |_| false);
        assert_eq!(read_all(&server, 5), Ok((0..12).collect()));
        assert_eq!(server.sizes(), vec![5, 5, 5]);
    }

    #[test]
    fn an_exact_multiple_costs_two_calls_more_not_a_second_read() {
        // 30 items in pages of 10: the third page is full without a token.
        // Only it is read again, from its own token, with pages of 9.
        let server = Server::new(30, |_| false);
        assert_eq!(read_all(&server, 10), Ok((0..30).collect()));
        let calls = server.calls.borrow().clone();
        assert_eq!(
            calls,
            vec![
                (None, 10),
                (Some("10".into()), 10),
                (Some("20".into()), 10),
                (Some("20".into()), 9),
                (Some("29".into()), 9),
            ]
        );
    }

    #[test]
    fn at_the_smallest_page_size_the_tail_is_one_bigger_page() {
        let server = Server::new(15, |_| false);
        assert_eq!(read_all(&server, 5), Ok((0..15).collect()));
        assert_eq!(server.sizes(), vec![5, 5, 5, 6]);
    }

    #[test]
    fn a_token_dropped_on_a_full_page_is_read_past() {
        // 47 items in pages of 10; the second call's token is dropped, so
        // the first read ends after 20 items on a full page.
        let server = Server::new(47, |n| n == 1);
        assert_eq!(read_all(&server, 10), Ok((0..47).collect()));
        assert_eq!(server.sizes(), vec![10, 10, 9, 9, 9, 9, 9]);
    }

    #[test]
    fn a_single_full_page_is_read_again_whole() {
        let server = Server::new(10, |_| false);
        assert_eq!(read_all(&server, 10), Ok((0..10).collect()));
        assert_eq!(server.sizes(), vec![10, 9, 9]);
    }

    #[test]
    fn a_listing_cut_at_every_page_size_is_an_error_not_a_count() {
        // Every token dropped: every read ends on a full first page.
        let server = Server::new(40, |_| true);
        let cause = read_all(&server, 10).expect_err("never a guess");
        assert!(
            cause.contains("templates") && cause.contains("cut short"),
            "{cause}"
        );
        assert_eq!(server.sizes(), vec![10, 9, 8]);
    }

    #[test]
    fn a_tail_that_ends_full_again_tries_the_third_size_then_the_whole() {
        // 50 items in pages of 10, so the first read ends full on its own.
        // The tail reads (pages of 9, then 8) have their tokens dropped, and
        // so does the whole read at 9; the whole read at 8 gets them all.
        let server = Server::new(50, |n| (5..=7).contains(&n));
        assert_eq!(read_all(&server, 10), Ok((0..50).collect()));
        assert_eq!(server.sizes()[..9], [10, 10, 10, 10, 10, 9, 8, 9, 8]);
    }

    #[test]
    fn a_tail_token_that_is_refused_falls_back_to_reading_it_all() {
        // A server whose tokens ("size:position") hold only at the page size
        // they were made for, serving 20 items.
        let calls = RefCell::new(Vec::new());
        let fetch = |token: Option<String>, size: i32| {
            calls.borrow_mut().push(size);
            let per = u32::try_from(size).unwrap_or(1);
            let start = match token.as_deref().map(|t| t.split_once(':')) {
                None => Ok(0),
                Some(Some((made, at))) if made == size.to_string() => {
                    at.parse::<u32>().map_err(|e| e.to_string())
                }
                Some(_) => Err("InvalidPaginationToken".to_string()),
            };
            let answer = start.map(|start| {
                let end = (start + per).min(20);
                Page::of(
                    (start..end).collect(),
                    (end < 20).then(|| format!("{size}:{end}")),
                )
            });
            async move { answer }
        };
        // 20 in pages of 10 ends full; the tail at 9 is refused; the whole
        // read at 9 ends on a short page and is taken.
        let result = run(listing("subnets", 10, fetch));
        assert_eq!(result, Ok((0..20).collect()));
        assert_eq!(*calls.borrow(), vec![10, 10, 9, 9, 9, 9]);
    }

    #[test]
    fn entries_not_items_make_a_page_full() {
        // Two items per entry (instances in reservations): 3 entries in
        // pages of 3 is a full page, even though 6 items came back.
        let calls = RefCell::new(0);
        let fetch = |_token: Option<String>, size: i32| {
            *calls.borrow_mut() += 1;
            let entries = 3usize.min(usize::try_from(size).unwrap_or(0));
            let page = Page {
                items: (0..2 * entries).collect::<Vec<_>>(),
                entries,
                next: None,
            };
            async move { Ok(page) }
        };
        let result = run(listing("instances", 3, fetch));
        assert_eq!(result.map(|i| i.len()), Ok(6));
        assert_eq!(
            *calls.borrow(),
            2,
            "the full page of entries was read again"
        );
    }

    #[test]
    fn a_repeated_token_is_an_error_not_a_short_or_endless_list() {
        let calls = RefCell::new(0);
        let fetch = |_token: Option<String>, _size: i32| {
            *calls.borrow_mut() += 1;
            async move { Ok(Page::of(vec![1u32], Some("a".to_string()))) }
        };
        let cause = run(listing("security groups", 1, fetch)).expect_err("untrusted");
        assert!(
            cause.contains("security groups") && cause.contains("NextToken"),
            "{cause}"
        );
        assert_eq!(*calls.borrow(), 2, "stopped at the repeat");
    }

    #[test]
    fn a_failed_page_fails_the_listing() {
        let fetch = |token: Option<String>, _size: i32| async move {
            match token {
                None => Ok(Page::of(vec![1u32, 2, 3, 4, 5], Some("next".to_string()))),
                Some(_) => Err("RequestLimitExceeded: throttled".to_string()),
            }
        };
        assert_eq!(
            run(listing("subnets", 5, fetch)),
            Err("RequestLimitExceeded: throttled".to_string()),
            "the pages read before the failure are not returned"
        );
    }

    #[test]
    fn an_endless_listing_stops_at_the_page_bound() {
        let calls = RefCell::new(0usize);
        let fetch = |_token: Option<String>, _size: i32| {
            *calls.borrow_mut() += 1;
            let n = *calls.borrow();
            async move { Ok(Page::<u32>::of(Vec::new(), Some(format!("t{n}")))) }
        };
        let cause = run(listing("offerings", 5, fetch)).expect_err("bounded");
        assert!(cause.contains("pages"), "{cause}");
        assert_eq!(*calls.borrow(), MAX_PAGES);
    }

    #[test]
    fn an_empty_token_ends_the_listing() {
        let fetch = |token: Option<String>, _size: i32| async move {
            Ok(match token {
                None => Page::of(vec![1u32, 2], Some("a".to_string())),
                Some(_) => Page::of(vec![3], Some(String::new())),
            })
        };
        assert_eq!(run(listing("subnets", 2, fetch)), Ok(vec![1, 2, 3]));
    }
}
