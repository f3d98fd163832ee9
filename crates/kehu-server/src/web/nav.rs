//! Who may see what: the workbench's navigation for the sixteen capabilities of the
//! product, each entry with the roles whose work it is, and the permissions the pages
//! check before they read any data.

use kehu_domain::state::Role;
use Role::*;

/// One navigation entry. `path: None` marks a capability whose pages have not landed:
/// it shows in the navigation as "not yet available", never as a page with made-up data.
#[derive(Debug, Clone, Copy)]
pub struct NavItem {
    pub key: &'static str,
    pub path: Option<&'static str>,
    pub roles: &'static [Role],
}

const ALL: &[Role] = &[
    Admin,
    CustomerManager,
    Marketer,
    ServiceAgent,
    Collector,
    Analyst,
    BranchHead,
];

/// The whole map, in menu order. A capability's pages land by giving it a `path`.
pub const NAV: &[NavItem] = &[
    NavItem {
        key: "nav.home",
        path: Some("/"),
        roles: ALL,
    },
    NavItem {
        key: "nav.customers",
        path: Some("/customers"),
        roles: &[Admin, CustomerManager, ServiceAgent, Collector, BranchHead],
    },
    NavItem {
        key: "nav.products",
        path: Some("/products"),
        roles: ALL,
    },
    NavItem {
        key: "nav.behaviour",
        path: Some("/behaviour/settings"),
        roles: &[Analyst, Marketer, Admin],
    },
    NavItem {
        key: "nav.analytics",
        path: None,
        roles: &[Analyst, Marketer, CustomerManager, BranchHead],
    },
    NavItem {
        key: "nav.risk",
        path: None,
        roles: &[CustomerManager, Analyst, Admin],
    },
    NavItem {
        key: "nav.recommendations",
        path: None,
        roles: &[CustomerManager, Marketer, Analyst],
    },
    NavItem {
        key: "nav.campaigns",
        path: None,
        roles: &[Marketer],
    },
    NavItem {
        key: "nav.contact_policy",
        path: None,
        roles: &[Marketer, Admin],
    },
    NavItem {
        key: "nav.delivery",
        path: None,
        roles: &[Marketer, Analyst],
    },
    NavItem {
        key: "nav.service",
        path: None,
        roles: &[ServiceAgent],
    },
    NavItem {
        key: "nav.market",
        path: None,
        roles: &[CustomerManager, ServiceAgent],
    },
    NavItem {
        key: "nav.billing",
        path: Some("/billing"),
        roles: &[Collector, BranchHead],
    },
    NavItem {
        key: "nav.meter_review",
        path: Some("/meter-review"),
        roles: &[Collector],
    },
    NavItem {
        key: "nav.line_loss",
        path: None,
        roles: &[Collector, Analyst],
    },
    NavItem {
        key: "nav.scorecards",
        path: None,
        roles: &[Analyst],
    },
    NavItem {
        key: "nav.performance",
        path: None,
        roles: &[BranchHead, Admin],
    },
    NavItem {
        key: "nav.platform",
        path: Some("/admin/staff"),
        roles: &[Admin],
    },
];

/// What a page needs before it reads data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    /// Customer lists and the 360 view.
    Customers,
    Products,
    /// Staff accounts.
    StaffAdmin,
    /// Arrears, the dunning worklist and the supply account pages.
    Billing,
    /// The meter-read review queue and its decisions.
    MeterReview,
    /// The audit trail: administrators only. Branch heads do not get it: it names the
    /// logins of every staff member and the customers they looked at, and reading it is
    /// part of the administrator's separation of duties.
    Audit,
    /// Create and revoke app keys.
    AppKeys,
    /// The risk questionnaire, suitability rules and recommendation weights in use
    /// (read-only).
    BehaviourSettings,
    /// Approve a disconnection order (the legal gate "a different staff member approved"):
    /// branch heads and the administrator.
    ApproveDisconnection,
    /// Bill a period from the workbench: branch heads.
    RunBilling,
}

pub fn can(role: Role, perm: Perm) -> bool {
    let key = match perm {
        Perm::ApproveDisconnection => return matches!(role, Role::BranchHead | Role::Admin),
        Perm::RunBilling => return role == Role::BranchHead,
        Perm::Customers => "nav.customers",
        Perm::Products => "nav.products",
        Perm::StaffAdmin | Perm::Audit | Perm::AppKeys => "nav.platform",
        Perm::Billing => "nav.billing",
        Perm::MeterReview => "nav.meter_review",
        Perm::BehaviourSettings => "nav.behaviour",
    };
    NAV.iter().any(|n| n.key == key && n.roles.contains(&role))
}

/// May this role see a customer's phone and ID number in full? Only the customer's own
/// manager, and only when the server is configured to allow unmasking at all. Every such
/// view is written to the audit log target.
pub fn may_unmask(role: Role, staff_id: &str, customer_manager: Option<&str>) -> bool {
    role == CustomerManager && customer_manager == Some(staff_id)
}

/// The navigation a role sees.
pub fn for_role(role: Role) -> impl Iterator<Item = &'static NavItem> {
    NAV.iter().filter(move |n| n.roles.contains(&role))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_sees_home_and_a_navigation_of_its_own() {
        let mut seen = std::collections::HashSet::new();
        for &r in Role::ALL {
            let keys: Vec<_> = for_role(r).map(|n| n.key).collect();
            assert_eq!(keys.first(), Some(&"nav.home"), "{r}");
            assert!(keys.len() >= 3, "{r}: {keys:?}");
            assert!(
                seen.insert(keys.clone()),
                "{r} shares its navigation: {keys:?}"
            );
        }
    }

    #[test]
    fn permissions_follow_the_navigation() {
        assert!(can(CustomerManager, Perm::Customers));
        assert!(!can(Marketer, Perm::Customers));
        assert!(!can(Analyst, Perm::Customers));
        assert!(can(Admin, Perm::StaffAdmin));
        assert!(!can(BranchHead, Perm::StaffAdmin));
        assert!(can(Admin, Perm::Audit) && can(Admin, Perm::AppKeys));
        for r in [CustomerManager, Marketer, ServiceAgent, Collector, Analyst, BranchHead] {
            assert!(!can(r, Perm::Audit) && !can(r, Perm::AppKeys), "{r}");
        }
        assert!(can(Marketer, Perm::BehaviourSettings) && can(Admin, Perm::BehaviourSettings));
        assert!(!can(CustomerManager, Perm::BehaviourSettings));
        assert!(Role::ALL.iter().all(|&r| can(r, Perm::Products)));
        assert!(can(Collector, Perm::Billing) && can(BranchHead, Perm::Billing));
        assert!(!can(Marketer, Perm::Billing) && !can(CustomerManager, Perm::Billing));
        assert!(can(Collector, Perm::MeterReview));
        assert!(!can(BranchHead, Perm::MeterReview));
        assert!(may_unmask(CustomerManager, "S001M01", Some("S001M01")));
        assert!(!may_unmask(CustomerManager, "S001M01", Some("S001M02")));
        assert!(!may_unmask(BranchHead, "S001H", Some("S001H")));
    }

    #[test]
    fn the_map_covers_the_sixteen_capabilities() {
        // home + products + 16 capabilities (customer 360 … platform)
        assert_eq!(NAV.len(), 18);
    }
}
